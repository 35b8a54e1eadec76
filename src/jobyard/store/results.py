"""Custom results: the JSON objects appended to jobs, read one job's or many jobs' at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from jobyard.domain.models import JobResult
from jobyard.store import tables
from jobyard.store.types import in_ids

RESULTS = tables.job_results
BATCH = 500


def insert_result(
    conn: Connection, *, job_id: int, user_id: int | None, payload: Mapping[str, Any], at: datetime
) -> int:
    query = (
        insert(RESULTS)
        .values(job_id=job_id, user_id=user_id, payload=dict(payload), at=at)
        .returning(RESULTS.c.id)
    )
    return int(conn.execute(query).scalar_one())


def _result(row: Row[Any]) -> JobResult:
    return JobResult(row.id, row.job_id, row.user_id, dict(row.payload), row.at)


def list_results(conn: Connection, job_id: int) -> list[JobResult]:
    """A job's custom results, newest first."""
    rows = conn.execute(
        select(RESULTS).where(RESULTS.c.job_id == job_id).order_by(RESULTS.c.id.desc())
    )
    return [_result(r) for r in rows]


_RESULTS_OF_JOBS = (
    select(RESULTS).where(in_ids(RESULTS.c.job_id, "ids")).order_by(RESULTS.c.id.desc())
)


def results_of_jobs(conn: Connection, job_ids: Sequence[int]) -> dict[int, list[JobResult]]:
    """The custom results of each job, newest first (every job given has a list)."""
    found: dict[int, list[JobResult]] = {job_id: [] for job_id in job_ids}
    ids = list(found)
    for start in range(0, len(ids), BATCH):
        for row in conn.execute(_RESULTS_OF_JOBS, {"ids": ids[start : start + BATCH]}):
            found[row.job_id].append(_result(row))
    return found
