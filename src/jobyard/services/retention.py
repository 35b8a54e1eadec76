"""Use cases of retention: each customer's own (read, set, and a dry run of what it would
delete now), and the background sweep that deletes what every customer's lets go.

The sweep works in small batches: it finds a batch in a read (no lock held while it looks),
deletes it in a short transaction of its own, pauses, and goes on, so that launches and
claims never wait long behind it. On SQLite each batch's freed pages go back to the file
(`incremental_vacuum`); PostgreSQL's autovacuum makes the space reusable (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import idempotency as idempotency_rules
from jobyard.domain import webhooks as webhook_rules
from jobyard.domain.permissions import Principal, Scope, require
from jobyard.domain.retention import Retention, Swept
from jobyard.services import audit
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import idempotency as idempotency_store
from jobyard.store import retention as store
from jobyard.store import schedules as schedule_store
from jobyard.store import sqlite_space
from jobyard.store import webhooks as webhook_store

FIRES_KEPT = 1000  # a schedule's newest fire times kept; older ones go with the sweep
VACUUM_PAGES = 2000  # pages given back to an SQLite file after each batch


def get_retention(rt: Runtime, *, actor: Principal) -> Retention:
    """The acting customer's retention (packages may have their own)."""
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return store.customer_retention(conn, actor.tenant_id)


def set_retention(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Retention:
    """Set the acting customer's retention (every value; null keeps for ever)."""
    require(actor, Scope.ADMIN)
    retention = Retention(**{f.name: values.get(f.name) for f in fields(Retention)})
    retention.check()
    with rt.db.transaction() as conn:
        store.set_customer_retention(conn, actor.tenant_id, retention)
        detail = {f.name: getattr(retention, f.name) for f in fields(Retention)}
        audit.record(conn, actor, "retention.set", "customer", [actor.tenant_id], detail=detail)
    return retention


@dataclass(frozen=True)
class Preview:
    """What a sweep would delete now, by package."""

    packages: list[dict[str, Any]]

    @property
    def jobs(self) -> int:
        return sum(p["jobs"] for p in self.packages)

    @property
    def output_chunks(self) -> int:
        return sum(p["output_chunks"] for p in self.packages)


def preview(rt: Runtime, *, actor: Principal, now: datetime | None = None) -> Preview:
    """A dry run: what the acting customer's retention would delete now, deleting nothing."""
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        policies = store.policies_of(conn, actor.tenant_id)
        return Preview(store.preview(conn, policies, now=now or utcnow()))


Stop = Callable[[], bool]


def sweep(rt: Runtime, *, now: datetime | None = None, stop: Stop = lambda: False) -> Swept:
    """Delete what every customer's retention lets go, and idempotency keys, schedule fire
    times and webhook deliveries past their time; each customer's counts go to its audit
    trail."""
    moment = now or utcnow()
    with rt.db.read() as conn:
        customers = store.all_policies(conn)
    total = Swept()
    for policies in customers:
        swept = _sweep_customer(rt, policies, moment, stop)
        if swept.anything:
            with rt.db.transaction() as conn:
                audit.record(
                    conn,
                    None,
                    "retention.delete",
                    "customer",
                    [policies.tenant_id],
                    tenant_id=policies.tenant_id,
                    detail={"jobs": swept.jobs, "output_chunks": swept.outputs},
                )
        total += swept
    expired = _expire_keys(rt, moment, stop) + _trim_fires(rt, stop)
    return total + expired + _expire_deliveries(rt, moment, stop)


def _sweep_customer(rt: Runtime, policies: store.Policies, now: datetime, stop: Stop) -> Swept:
    limit = rt.settings.retention_batch
    jobs = outputs = 0
    while not stop():
        with rt.db.read() as conn:
            ids = store.expired_job_ids(conn, policies, now=now, limit=limit)
            ids = ids or store.surplus_job_ids(conn, policies, limit=limit)
        deleted = _batch(rt, partial(store.delete_jobs, job_ids=ids)) if ids else 0
        if not deleted:
            break
        jobs += deleted
    while not stop():
        with rt.db.read() as conn:
            batches = store.output_due(conn, policies, now=now, limit=limit)
        for batch in batches:
            outputs += _batch(
                rt, partial(store.delete_output, batch=batch, tenant_id=policies.tenant_id)
            )
        if not batches:
            break
    return Swept(jobs=jobs, outputs=outputs)


def _batch(rt: Runtime, work: Callable[[Connection], int]) -> int:
    """One batch's deletion in a transaction of its own, its freed pages given back (SQLite),
    then a pause that lets other writers go between two batches: at least as long as the
    batch took, so that deleting never takes more than half of the database's time."""
    began = time.monotonic()
    with rt.db.transaction() as conn:
        done = work(conn)
    if rt.db.is_sqlite:
        with rt.db.transaction() as conn:
            sqlite_space.give_back(conn, VACUUM_PAGES)
    took = time.monotonic() - began
    time.sleep(max(rt.settings.retention_pause_seconds, took))
    return done


def _expire_keys(rt: Runtime, now: datetime, stop: Stop) -> Swept:
    before = now - idempotency_rules.WINDOW
    gone = 0
    while not stop():
        limit = rt.settings.retention_batch
        deleted = _batch(rt, partial(idempotency_store.delete_expired, before=before, limit=limit))
        gone += deleted
        if deleted < rt.settings.retention_batch:
            break
    return Swept(keys=gone)


def _expire_deliveries(rt: Runtime, now: datetime, stop: Stop) -> Swept:
    """Webhook deliveries done (delivered or failed) longer ago than their log is kept."""
    before = now - webhook_rules.DELIVERIES_KEPT
    limit = rt.settings.retention_batch
    while not stop():
        deleted = _batch(
            rt, partial(webhook_store.delete_old_deliveries, before=before, limit=limit)
        )
        if deleted < limit:
            break
    return Swept()


def _trim_fires(rt: Runtime, stop: Stop) -> Swept:
    with rt.db.read() as conn:
        crowded = schedule_store.crowded_schedules(conn, keep=FIRES_KEPT)
    for schedule_id in crowded:
        if stop():
            break
        _batch(rt, partial(schedule_store.trim_fires, schedule_id=schedule_id, keep=FIRES_KEPT))
    return Swept()


def compact_sqlite(rt: Runtime) -> bool:
    """Make an SQLite file give deleted rows' pages back to the file system from now on (a
    whole-file VACUUM: with the server stopped). False for PostgreSQL, whose autovacuum
    makes the space reusable without this."""
    if not rt.db.is_sqlite:
        return False
    return sqlite_space.make_incremental(rt.db.engine) == sqlite_space.INCREMENTAL
