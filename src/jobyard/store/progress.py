"""Where followed jobs stand: each job's status and each of its runs' end and stored output,
for many jobs in one statement (what a process's log watcher reads on each tick)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from jobyard.domain.following import JobProgress, RunProgress
from jobyard.domain.statuses import JobStatus
from jobyard.store import tables
from jobyard.store.types import in_ids

BATCH = 500
_J = tables.jobs
_R = tables.runs
_OUT = tables.run_output


def _stream_end(stream: str) -> Any:
    """Where a run's stored output of `stream` ends, as a merged-log offset (NULL: none)."""
    return (
        select(func.max(_OUT.c.offset + func.length(_OUT.c.data)))
        .where(_OUT.c.run_id == _R.c.id, _OUT.c.stream == stream)
        .scalar_subquery()
    )


# One statement, so a job's status, its runs' ends and their output are one snapshot: a
# terminal job's output is all there.
_PROGRESS = (
    select(
        _J.c.id,
        _J.c.status,
        _J.c.exit_code,
        _R.c.id.label("run_id"),
        _R.c.attempt,
        _R.c.finished,
        _stream_end("stdout").label("stdout_end"),
        _stream_end("stderr").label("stderr_end"),
    )
    .select_from(_J.outerjoin(_R, _R.c.job_id == _J.c.id))
    .where(in_ids(_J.c.id, "ids"))
    .order_by(_J.c.id, _R.c.attempt)
)


def job_progress(conn: Connection, job_ids: Sequence[int]) -> dict[int, JobProgress]:
    """Each job's progress by id; a job that does not exist (any more) is left out."""
    found: dict[int, JobProgress] = {}
    runs: dict[int, list[RunProgress]] = {}
    for start in range(0, len(job_ids), BATCH):
        for row in conn.execute(_PROGRESS, {"ids": list(job_ids[start : start + BATCH])}):
            if row.id not in found:
                found[row.id] = JobProgress(row.id, JobStatus(row.status), row.exit_code)
                runs[row.id] = []
            if row.run_id is not None:
                runs[row.id].append(
                    RunProgress(
                        row.run_id,
                        row.attempt,
                        row.finished is not None,
                        row.stdout_end or 0,
                        row.stderr_end or 0,
                    )
                )
    return {
        job_id: JobProgress(job.job_id, job.status, job.exit_code, tuple(runs[job_id]))
        for job_id, job in found.items()
    }
