"""The history of each job: an event for every status it took, who or what moved it, and
why. Written with each status change (see `transitions`) and each launch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from jobyard.domain.models import JobEvent
from jobyard.domain.statuses import JobStatus
from jobyard.store import tables
from jobyard.store.driver import DriverStatements, RowsInsert


def record_events(
    conn: DriverStatements, events: Sequence[tuple[int, JobStatus, JobStatus, str]], *, at: datetime
) -> None:
    """Status changes made by the system, as (job id, from, to, reason), in one statement."""
    insert_events(
        conn, [event_row(job_id, old, new, at, None, reason) for job_id, old, new, reason in events]
    )


INSERT_EVENTS = RowsInsert(
    tables.job_events, ("job_id", "from_status", "to_status", "at", "user_id", "reason")
)


def record_event(
    conn: Connection,
    job_id: int,
    from_status: JobStatus | None,
    to_status: JobStatus,
    *,
    at: datetime,
    user_id: int | None,
    reason: str,
) -> None:
    insert_events(conn, [event_row(job_id, from_status, to_status, at, user_id, reason)])


def event_row(
    job_id: int,
    old: JobStatus | None,
    new: JobStatus,
    at: datetime,
    user_id: int | None,
    reason: str,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "from_status": None if old is None else old.value,
        "to_status": new.value,
        "at": at,
        "user_id": user_id,
        "reason": reason,
    }


def insert_events(conn: DriverStatements, rows: Sequence[Mapping[str, Any]]) -> None:
    """The rows in one INSERT."""
    if rows:
        INSERT_EVENTS.execute_mappings(conn, rows)


def list_events(conn: Connection, job_id: int) -> list[JobEvent]:
    events = tables.job_events
    rows = conn.execute(select(events).where(events.c.job_id == job_id).order_by(events.c.id))
    return [
        JobEvent(
            id=r.id,
            job_id=r.job_id,
            from_status=None if r.from_status is None else JobStatus(r.from_status),
            to_status=JobStatus(r.to_status),
            at=r.at,
            user_id=r.user_id,
            reason=r.reason,
        )
        for r in rows
    ]
