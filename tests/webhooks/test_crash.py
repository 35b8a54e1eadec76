"""No event is lost to a crash: `jobyard serve` runs jobs without a dispatcher and is killed
(SIGKILL) after they finished, before any delivery; a new `jobyard serve` with a dispatcher
delivers an event for each of them, signed (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobyard.client import Client
from jobyard.settings import Settings
from jobyard.store import tables
from jobyard.store.db import Database
from tests.conftest import ADMIN_TOKEN, free_port, wait_until_healthy
from tests.webhooks.receiver import Receiver, documented_verify

# Kills jobyard processes, whose next start stops what their runs left on this host: alone.
pytestmark = pytest.mark.alone

TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}


@contextmanager
def serve(
    settings: Settings, log: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`jobyard serve` on the test's database, as its own process."""
    port = free_port()
    full_env = (
        {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        | {
            "JOBYARD_PORT": str(port),
            "JOBYARD_DATABASE_URL": settings.database_url,
            "JOBYARD_DATA_DIR": str(settings.data_dir),
            "JOBYARD_ADMIN_TOKEN": ADMIN_TOKEN,
            "JOBYARD_RUN_AS": settings.run_as,
            "JOBYARD_RUNS_DIR": str(settings.effective_runs_dir),
            "JOBYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
            "JOBYARD_WEBHOOK_POLL_SECONDS": "0.05",
        }
        | env
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobyard", "serve"], env=full_env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, log)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def outbox_events(settings: Settings) -> list[str]:
    """The events waiting in the outbox (every job event of a customer with a webhook; the
    dispatcher keeps those a webhook subscribes to)."""
    db = Database(settings.database_url)
    try:
        with db.read() as conn:
            return list(conn.execute(sa.select(tables.webhook_outbox.c.event)).scalars())
    finally:
        db.dispose()


def test_events_outlive_a_killed_server(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with Receiver() as receiver:
        with serve(settings, log, JOBYARD_SCHEDULER="false") as (proc, url):
            with Client(url, ADMIN_TOKEN) as api:
                made = api.create_webhook({"url": receiver.url})
                ok = api.create_package({"name": "ok", "command": ["true"]})
                bad = api.create_package({"name": "bad", "command": ["false"]})
                jobs = [api.launch({"package_id": p["id"]}) for p in (ok, bad, ok)]
                deadline = time.monotonic() + 30
                while any(api.get_job(j["id"])["status"] not in TERMINAL for j in jobs):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)  # no clean shutdown: nothing is flushed
            assert proc.wait(10) == -signal.SIGKILL
        assert receiver.snapshot() == []
        waiting = outbox_events(settings)  # committed with the jobs' launches, starts and ends
        assert sorted(waiting) == sorted(["job.launched", "job.started", "job.finished"] * 3)

        with serve(settings, log) as (_proc, _url):
            got = receiver.wait_for(lambda found: len(found) >= len(jobs))
        assert outbox_events(settings) == []
    verify = documented_verify()
    for request in got:
        assert verify(made["secret"], request.headers["jobyard-signature"], request.body)
    assert sorted(r.json["job_id"] for r in got) == sorted(j["id"] for j in jobs)
    assert {r.json["job_id"]: r.json["status"] for r in got}[jobs[1]["id"]] == "failed"
    assert {r.event for r in got} == {"job.finished"}
