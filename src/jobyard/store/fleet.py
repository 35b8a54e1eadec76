"""Workers, their heartbeats, run leases and the reaper's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from jobyard.domain.statuses import RunStatus
from jobyard.store import tables
from jobyard.store.jobs import J, get_claimed_job
from jobyard.store.records import RecordReader
from jobyard.store.runs import Claim, R

W = tables.workers


@dataclass(frozen=True)
class WorkerRecord:
    id: int
    name: str
    host: str
    pid: int
    slots: int
    started: datetime
    heartbeat: datetime
    draining: bool
    stopped: datetime | None


worker_from_row = RecordReader(WorkerRecord)


def insert_worker(
    conn: Connection, *, name: str, host: str, pid: int, slots: int, at: datetime
) -> int:
    query = (
        insert(W)
        .values(name=name, host=host, pid=pid, slots=slots, started=at, heartbeat=at)
        .returning(W.c.id)
    )
    return int(conn.execute(query).scalar_one())


def beat(conn: Connection, worker_id: int, *, at: datetime, draining: bool) -> None:
    conn.execute(update(W).where(W.c.id == worker_id).values(heartbeat=at, draining=draining))


def mark_stopped(conn: Connection, worker_id: int, at: datetime) -> None:
    conn.execute(update(W).where(W.c.id == worker_id).values(stopped=at, heartbeat=at))


def renew_leases(
    conn: Connection, *, worker_id: int, run_ids: Sequence[int], until: datetime
) -> set[int]:
    """Extend the leases of this worker's running runs; return those it no longer holds."""
    if not run_ids:
        return set()
    held = conn.execute(
        update(R)
        .where(
            R.c.id.in_(run_ids),
            R.c.worker_id == worker_id,
            R.c.status == RunStatus.RUNNING.value,
        )
        .values(lease_expires=until)
        .returning(R.c.id)
    )
    return set(run_ids) - {row.id for row in held}


def expired_claims(conn: Connection, *, now: datetime, limit: int) -> list[Claim]:
    """Running runs whose lease lapsed: their worker died or lost touch. Several reapers may
    see the same run; closing it is guarded, so only one of them ends it."""
    query = (
        select(R.c.id, R.c.job_id, R.c.attempt)
        .where(R.c.status == RunStatus.RUNNING.value, R.c.lease_expires < now)
        .order_by(R.c.lease_expires)
        .limit(limit)
    )
    return _claims(conn, query)


def overdue_claims(conn: Connection, *, before: datetime, limit: int) -> list[Claim]:
    """Running runs past their deadline by more than the grace the worker had to stop them."""
    query = (
        select(R.c.id, R.c.job_id, R.c.attempt)
        .where(R.c.status == RunStatus.RUNNING.value, R.c.deadline < before)
        .order_by(R.c.deadline)
        .limit(limit)
    )
    return _claims(conn, query)


def _claims(conn: Connection, query: Any) -> list[Claim]:
    return [
        Claim(job=get_claimed_job(conn, row.job_id), run_id=row.id, attempt=row.attempt)
        for row in conn.execute(query)
    ]


def list_workers(conn: Connection, *, include_stopped: bool) -> list[WorkerRecord]:
    query = select(W).order_by(W.c.id)
    if not include_stopped:
        query = query.where(W.c.stopped.is_(None))
    return [worker_from_row(r) for r in conn.execute(query)]


def running_jobs_by_worker(conn: Connection, *, tenant_id: int | None) -> dict[int, list[int]]:
    query = (
        select(R.c.worker_id, R.c.job_id)
        .join(J, J.c.id == R.c.job_id)
        .where(R.c.status == RunStatus.RUNNING.value, R.c.worker_id.is_not(None))
    )
    if tenant_id is not None:
        query = query.where(J.c.tenant_id == tenant_id)
    found: dict[int, list[int]] = {}
    for row in conn.execute(query):
        found.setdefault(row.worker_id, []).append(row.job_id)
    return found
