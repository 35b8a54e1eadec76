"""Dispatchers of several processes share the work without electing anyone: racing over the
same outbox they make each event into one delivery per webhook, and racing over the due
deliveries they take each one once (PostgreSQL's SKIP LOCKED; SQLite's one writer)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from jobyard.services import accounts, webhooks
from jobyard.services.runtime import Runtime, open_runtime, utcnow
from jobyard.store import tables

EVENTS = 300


def race(runtimes: list[Runtime], work: Callable[[Runtime], Any]) -> list[Any]:
    results: list[Any] = [None] * len(runtimes)
    start = threading.Barrier(len(runtimes))

    def run(i: int) -> None:
        start.wait()
        results[i] = work(runtimes[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(runtimes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_racing_dispatchers_make_and_take_each_delivery_once(runtime: Runtime) -> None:
    admin = accounts.bootstrap_admin(runtime).admin_user_id
    now = utcnow()
    with runtime.db.transaction() as conn:
        for url in ("https://a.example.com/", "https://b.example.com/"):
            row = {"tenant_id": 1, "url": url, "events": ["job.finished"], "user_id": admin}
            row |= {"secret": "v1:x", "secret_hint": "…x", "created": now, "updated": now}
            conn.execute(sa.insert(tables.webhooks).values(**row))
        conn.execute(
            sa.insert(tables.webhook_outbox),
            [
                {"job_id": n, "tenant_id": 1, "event": "job.finished", "status": "completed"}
                | {"at": now}
                for n in range(1, EVENTS + 1)
            ],
        )
    settings = runtime.settings.model_copy(update={"webhook_timeout_seconds": 1.0})
    others = [open_runtime(settings) for _ in range(3)]
    try:
        made = race(others, webhooks.fan_out)
        taken = race(others, drain)
    finally:
        for rt in others:
            rt.db.dispose()

    assert sum(made) == 2 * EVENTS
    with runtime.db.read() as conn:
        pairs = conn.execute(
            sa.select(tables.webhook_deliveries.c.webhook_id, tables.webhook_deliveries.c.job_id)
        ).all()
        outbox = conn.execute(sa.select(sa.func.count()).select_from(tables.webhook_outbox))
        assert outbox.scalar_one() == 0
    assert len(pairs) == len(set(pairs)) == 2 * EVENTS
    ids = [d for ids in taken for d in ids]
    assert len(ids) == len(set(ids)) == 2 * EVENTS  # every delivery taken, none twice


def drain(rt: Runtime) -> list[int]:
    """Take due deliveries until none is left for this dispatcher."""
    ids: list[int] = []
    while due := webhooks.take_due(rt):
        ids += [one.delivery.id for one in due]
    return ids
