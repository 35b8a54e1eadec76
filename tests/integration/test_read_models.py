"""The batched reads behind the read models give what the one-row reads give, row for row:
the start of each run's streams (repeated chunks, interleaved streams, caps that cut a chunk),
each job's latest run and each job's custom results, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import results, runs, tables
from tests.integration.job_rows import job_row

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# (stream, offset, data) per run; offsets count the combined log, as workers write them.
OUTPUT = [
    [("stdout", 0, b"abc"), ("stderr", 3, b"E1"), ("stdout", 5, b"defgh"), ("stdout", 10, b"ij")],
    [("stdout", 0, b"12345"), ("stdout", 0, b"12345"), ("stdout", 5, b"678"), ("stderr", 8, b"x")],
    [("stderr", 0, b"only-err")],
    [],
    [("stdout", 0, b""), ("stdout", 0, b"\xc3\xa9t\xc3\xa9"), ("stdout", 6, b"...")],
]


def _jobs(runtime: Runtime, count: int) -> list[int]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        row = job_row(tenant_id=1, user_id=user_id, status="completed", at=AT)
        conn.execute(sa.insert(tables.jobs), [row] * count)
        return list(conn.execute(sa.select(tables.jobs.c.id).order_by(tables.jobs.c.id)).scalars())


def _run(conn: sa.Connection, job_id: int, attempt: int) -> int:
    values = {
        "job_id": job_id,
        "attempt": attempt,
        "run_key": attempt,
        "status": "completed",
        "worker": "w",
        "started": AT,
    }
    return int(
        conn.execute(sa.insert(tables.runs).values(values).returning(tables.runs.c.id)).scalar_one()
    )


@pytest.mark.parametrize("limit", [1, 3, 4, 6, 64 * 1024])
def test_output_heads_read_what_read_output_reads(runtime: Runtime, limit: int) -> None:
    job_ids = _jobs(runtime, len(OUTPUT))
    with runtime.db.transaction() as conn:
        run_ids = [_run(conn, job_id, 1) for job_id in job_ids]
        for run_id, chunks in zip(run_ids, OUTPUT, strict=True):
            runs.append_output(conn, run_id, chunks)

    with runtime.db.read() as conn:
        for stream in ("stdout", "stderr"):
            heads = runs.output_heads(conn, run_ids, stream=stream, limit_bytes=limit)
            one_by_one = {
                run_id: b"".join(
                    c.data
                    for c in runs.read_output(
                        conn, run_id, offset=0, limit_bytes=limit, stream=stream
                    )
                )[:limit]
                for run_id in run_ids
            }
            assert heads == one_by_one, stream
    assert runs.output_heads(conn, [], stream="stdout", limit_bytes=limit) == {}


def test_latest_runs_and_results_of_many_jobs(runtime: Runtime) -> None:
    job_ids = _jobs(runtime, 4)
    with runtime.db.transaction() as conn:
        for attempt in (1, 2, 3):
            _run(conn, job_ids[0], attempt)
        _run(conn, job_ids[1], 1)
        for n, job_id in enumerate([job_ids[0], job_ids[2], job_ids[0]]):
            results.insert_result(conn, job_id=job_id, user_id=None, payload={"n": n}, at=AT)

    with runtime.db.read() as conn:
        latest = runs.latest_runs(conn, job_ids)
        found = results.results_of_jobs(conn, job_ids)
        assert latest == {
            job_id: run for job_id in job_ids if (run := runs.latest_run(conn, job_id)) is not None
        }
        assert latest[job_ids[0]].attempt == 3
        assert found == {job_id: results.list_results(conn, job_id) for job_id in job_ids}
        assert [r.payload["n"] for r in found[job_ids[0]]] == [2, 0]
