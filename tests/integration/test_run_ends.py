"""Closing runs in batches, on both databases: every run gets its own end (status, exit code,
signal, output size, process id), also past the runs one statement closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from jobyard.domain.run_end import ProcessEnd
from jobyard.domain.statuses import RunStatus
from jobyard.services import accounts, execution, worker_registry
from jobyard.services.runtime import Runtime
from jobyard.store import tables, transitions
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
JOBS = transitions.CLOSE_AT_ONCE + 44  # two statements


def _result(i: int) -> ProcessEnd:
    """A different end for each job: exit codes 0, 3 and a kill by signal 9 in turn."""
    exit_code, signal = [(0, None), (3, None), (None, 9)][i % 3]
    spawned = AT.timestamp() + i + 0.25
    return ProcessEnd(exit_code, signal, False, False, i, i % 2 == 1, 10_000 + i, spawned)


def test_a_batch_of_ends_stores_each_runs_own_end(runtime: Runtime) -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
        conn.execute(sa.insert(tables.jobs), [row] * JOBS)
    worker = worker_registry.register_worker(runtime, slots=JOBS)
    works = execution.claim_jobs(runtime, worker=worker, limit=JOBS)
    endings = [
        execution.ending_of(w.claim, _result(i), worker_id=w.worker_id) for i, w in enumerate(works)
    ]

    statuses = execution.end_runs(runtime, endings)

    assert len(works) == JOBS
    expected = {
        w.claim.run_id: ("completed", "failed", "failed")[i % 3] for i, w in enumerate(works)
    }
    assert statuses == expected
    with runtime.db.read() as conn:
        stored = {r.id: r for r in conn.execute(sa.select(tables.runs))}
    for i, work in enumerate(works):
        run, result = stored[work.claim.run_id], _result(i)
        assert run.status == expected[work.claim.run_id]
        assert (run.exit_code, run.signal) == (result.exit_code, result.signal)
        assert (run.output_bytes, bool(run.truncated)) == (i, i % 2 == 1)
        assert run.process_id == 10_000 + i
        assert run.spawned == AT + timedelta(seconds=i + 0.25)
        assert run.finished is not None


def test_a_run_already_closed_is_left_as_it_was(runtime: Runtime) -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.insert(tables.jobs), job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
        )
    worker = worker_registry.register_worker(runtime, slots=1)
    (work,) = execution.claim_jobs(runtime, worker=worker, limit=1)
    first = ProcessEnd(0, None, False, False, 5, False, 111)
    late = transitions.RunEnd(work.claim.run_id, RunStatus.FAILED, 7, None, 9, True, process_id=222)
    execution.finish_claim(runtime, claim=work.claim, result=first, worker_id=work.worker_id)

    with runtime.db.transaction() as conn:
        closed = transitions.close_runs(conn, [late], at=AT)

    assert closed == set()
    with runtime.db.read() as conn:
        run = conn.execute(sa.select(tables.runs)).one()
    assert (run.status, run.exit_code, run.output_bytes, run.process_id) == ("completed", 0, 5, 111)
