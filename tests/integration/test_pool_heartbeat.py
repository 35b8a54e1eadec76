"""A worker's heartbeat against a real database: a run it no longer holds is stopped, but a
run whose process ended and whose end the engine has just stored is not "lost"."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from jobyard.domain.run_end import ProcessEnd
from jobyard.services import accounts, execution, worker_registry
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from jobyard.store.db import PG_POOL_SIZE, Database
from jobyard.store.sqlite import POOL_SIZE as SQLITE_POOL_SIZE
from jobyard.worker.engine import Engine
from jobyard.worker.starting import Running
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
EXITED = ProcessEnd(0, None, False, False, 0, False)


def _pool_running_one_job(runtime: Runtime, tmp_path: Path) -> tuple[Engine, Running]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.insert(tables.jobs).values(
                job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
            )
        )
    pool = Engine(runtime, slots=1)
    pool.identity = worker_registry.register_worker(runtime, slots=1)
    (work,) = execution.claim_jobs(runtime, worker=pool.identity, limit=1)
    running = Running(work, pool._recorder(work.claim.run_id))
    pool._running[work.claim.run_id] = running
    return pool, running


def test_a_run_ended_meanwhile_is_not_stopped_as_lost(runtime: Runtime, tmp_path: Path) -> None:
    pool, running = _pool_running_one_job(runtime, tmp_path)
    running.process_ended = True  # the engine stores its end: the renewal no longer finds it
    execution.finish_claim(
        runtime, claim=running.work.claim, result=EXITED, worker_id=pool.identity.id
    )
    pool._leases.heartbeat()
    assert not running.should_stop()


def test_a_run_taken_from_the_worker_is_stopped(runtime: Runtime, tmp_path: Path) -> None:
    pool, running = _pool_running_one_job(runtime, tmp_path)
    with runtime.db.transaction() as conn:  # as the reaper would, had the lease lapsed
        conn.execute(
            sa.update(tables.runs)
            .where(tables.runs.c.id == running.work.claim.run_id)
            .values(status="lost")
        )
    pool._leases.heartbeat()
    assert running.should_stop()


def _lease_expires(url: str, run_id: int) -> datetime:
    """Read through a database handle of its own: the runtime's pool is held by the test."""
    reader = Database(url)
    try:
        with reader.read() as conn:
            query = sa.select(tables.runs.c.lease_expires).where(tables.runs.c.id == run_id)
            value: datetime = conn.execute(query).scalar_one()
            return value
    finally:
        reader.dispose()


def test_the_heartbeat_renews_while_request_threads_hold_every_pooled_connection(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Requests may hold every connection of the shared pool (a burst of slow lists); the
    heartbeat has its own, so the lease is renewed meanwhile."""
    pool, running = _pool_running_one_job(runtime, tmp_path)
    run_id = running.work.claim.run_id
    before = _lease_expires(runtime.db.url, run_id)
    shared = PG_POOL_SIZE if runtime.pg else SQLITE_POOL_SIZE
    held = [runtime.db.engine.connect() for _ in range(2 * shared)]  # size and overflow
    beating = threading.Thread(target=pool._leases.heartbeat_loop, daemon=True)
    try:
        beating.start()
        deadline = time.monotonic() + 10
        while _lease_expires(runtime.db.url, run_id) <= before:
            assert time.monotonic() < deadline, "the lease was not renewed"
            time.sleep(0.05)
    finally:
        pool._stopped.set()
        beating.join(5)
        for conn in held:
            conn.close()
    assert not beating.is_alive()
    assert not running.should_stop()
