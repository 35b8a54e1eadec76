"""A worker's heartbeat against a real database: a run it no longer holds is stopped, but a
run whose process ended and whose end the engine has just stored is not "lost"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from jobyard.services import accounts, execution
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from jobyard.worker.output import OutputRecorder
from jobyard.worker.pool import WorkerPool, _Running
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
EXITED = execution.RunResult(0, None, False, False, 0, False)


def _pool_running_one_job(runtime: Runtime, tmp_path: Path) -> tuple[WorkerPool, _Running]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.insert(tables.jobs).values(
                job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
            )
        )
    pool = WorkerPool(runtime, slots=1)
    pool.identity = execution.register_worker(runtime, slots=1)
    (work,) = execution.claim_jobs(runtime, worker=pool.identity, limit=1)
    running = _Running(work, OutputRecorder(runtime, run_id=work.claim.run_id))
    pool._running[work.claim.job.id] = running
    return pool, running


def test_a_run_ended_meanwhile_is_not_stopped_as_lost(runtime: Runtime, tmp_path: Path) -> None:
    pool, running = _pool_running_one_job(runtime, tmp_path)
    running.process_ended = True  # the engine stores its end: the renewal no longer finds it
    execution.finish_claim(
        runtime, claim=running.work.claim, result=EXITED, worker_id=pool.identity.id
    )
    pool._heartbeat()
    assert not running.should_stop()


def test_a_run_taken_from_the_worker_is_stopped(runtime: Runtime, tmp_path: Path) -> None:
    pool, running = _pool_running_one_job(runtime, tmp_path)
    with runtime.db.transaction() as conn:  # as the reaper would, had the lease lapsed
        conn.execute(
            sa.update(tables.runs)
            .where(tables.runs.c.id == running.work.claim.run_id)
            .values(status="lost")
        )
    pool._heartbeat()
    assert running.should_stop()
