"""What a worker reads of the jobs it runs: the columns of a claimed job, and the state of its
job (status, attempts, outcome) re-read when a run ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from jobyard.domain import vocabulary
from jobyard.domain.models import ClaimedJob
from jobyard.domain.outcomes import Outcome
from jobyard.domain.statuses import JobStatus
from jobyard.errors import NotFound
from jobyard.store.direct import DirectStatement, direct
from jobyard.store.jobs import J, outcome_of
from jobyard.store.types import in_ids

# What a worker reads of a job it claims (`ClaimedJob`), in this order.
CLAIMED_JOB_COLUMNS = (
    J.c.id,
    J.c.status,
    J.c.package_id,
    J.c.user_id,
    J.c.argv,
    J.c.env,
    J.c.timeout_seconds,
    J.c.interface_names,
    J.c.attempts,
    J.c.outcome_status,
    J.c.outcome_result,
    J.c.sandbox,
    J.c.run_at,
)


def claimed_job_from_row(row: Any) -> ClaimedJob:
    """A claimed job from a row with its columns (`CLAIMED_JOB_COLUMNS`) by name."""
    return ClaimedJob(
        id=row.id,
        status=JobStatus(row.status),
        package_id=row.package_id or 0,
        user_id=row.user_id,
        argv=tuple(row.argv),
        env=row.env,
        timeout_seconds=row.timeout_seconds,
        interface_names=tuple(row.interface_names),
        attempts=row.attempts,
        outcome=outcome_of(row),
        sandbox=row.sandbox or {},
        run_at=row.run_at,
    )


_CLAIMED_JOB_BY_ID: Any = select(*CLAIMED_JOB_COLUMNS).where(J.c.id == bindparam("job_id"))


def get_claimed_job(conn: Connection, job_id: int) -> ClaimedJob:
    """A job as a worker that claimed it sees it (any tenant's)."""
    row = conn.execute(_CLAIMED_JOB_BY_ID, {"job_id": job_id}).first()
    if row is None:
        raise NotFound(vocabulary.NO_SUCH_JOB)
    return claimed_job_from_row(row)


@dataclass(frozen=True)
class JobState:
    """What may change about a job while it runs."""

    status: JobStatus
    attempts: int
    outcome: Outcome | None


def job_states(conn: Connection, job_ids: Sequence[int]) -> dict[int, JobState]:
    """The current state of running jobs, by id: all a worker needs to re-read when a run
    ends (the rest it read when it claimed the job)."""
    rows = _JOB_STATES.rows(direct(conn), {"ids": list(job_ids)})
    return {
        row.id: JobState(
            status=JobStatus(row.status),
            attempts=row.attempts,
            outcome=outcome_of(row),
        )
        for row in rows
    }


_JOB_STATES = DirectStatement(
    select(J.c.id, J.c.status, J.c.attempts, J.c.outcome_status, J.c.outcome_result).where(
        in_ids(J.c.id, "ids")
    )
)
