"""Workers, their heartbeats, run leases and the reaper's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select, update

from jobyard.domain.statuses import RunStatus
from jobyard.store import tables
from jobyard.store.claimed_jobs import get_claimed_job
from jobyard.store.jobs import J
from jobyard.store.queue import Claim, R
from jobyard.store.records import RecordReader

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


def _lock_free(query: Select[Any]) -> Select[Any]:
    """The rows `query` finds that no other session holds, locked until this transaction
    ends (PostgreSQL; SQLite, whose writers queue, locks nothing). Rows another session
    holds (a worker busy with them, or one frozen mid-transaction) are skipped, never waited
    for. NO KEY UPDATE: a session that only refers to the row (a chunk of a run's output,
    a job's event, a run of a worker) does not hold it up, nor does it hold this up."""
    return query.with_for_update(skip_locked=True, key_share=True)


def beat(conn: Connection, worker_id: int, *, at: datetime, draining: bool) -> None:
    """This worker is alive: running again if it was marked stopped (frozen past its lease,
    it has resumed). Skipped if another session holds its row for now."""
    mine = _lock_free(select(W.c.id).where(W.c.id == worker_id))
    conn.execute(
        update(W).where(W.c.id.in_(mine)).values(heartbeat=at, draining=draining, stopped=None)
    )


def mark_stopped(conn: Connection, worker_id: int, at: datetime) -> None:
    conn.execute(update(W).where(W.c.id == worker_id).values(stopped=at, heartbeat=at))


def mark_silent_stopped(conn: Connection, *, heard_before: datetime, at: datetime) -> int:
    """Mark stopped every worker not heard from since `heard_before` (dead, or frozen: one
    that resumes marks itself running again); return how many. Rows held elsewhere wait
    for the next round."""
    silent = _lock_free(select(W.c.id).where(W.c.stopped.is_(None), W.c.heartbeat < heard_before))
    return int(conn.execute(update(W).where(W.c.id.in_(silent)).values(stopped=at)).rowcount)


def renew_leases(
    conn: Connection, *, worker_id: int, run_ids: Sequence[int], until: datetime
) -> set[int]:
    """Extend the leases of this worker's running runs; return those it no longer holds. A
    run whose row another session holds just now (this worker's engine ending it, or the
    reaper) keeps its lease as it is: renewing never waits."""
    if not run_ids:
        return set()
    held = select(R.c.id).where(
        R.c.id.in_(run_ids),
        R.c.worker_id == worker_id,
        R.c.status == RunStatus.RUNNING.value,
    )
    still_held = set(conn.execute(held).scalars())  # as last committed: never waits
    conn.execute(update(R).where(R.c.id.in_(_lock_free(held))).values(lease_expires=until))
    return set(run_ids) - still_held


def take_expired_claims(conn: Connection, *, now: datetime, limit: int) -> list[Claim]:
    """Running runs whose lease lapsed (their worker died or lost touch), locked with their
    jobs for this transaction; runs or jobs another session holds are left for a later
    round. Several reapers may see the same run; each takes only rows nobody holds, and
    closing a run is guarded besides, so each is ended once."""
    query = (
        select(R.c.id, R.c.job_id, R.c.attempt)
        .where(R.c.status == RunStatus.RUNNING.value, R.c.lease_expires < now)
        .order_by(R.c.lease_expires)
        .limit(limit)
    )
    return _take(conn, query)


def take_overdue_claims(conn: Connection, *, before: datetime, limit: int) -> list[Claim]:
    """Running runs past their deadline by more than the grace the worker had to stop them,
    locked with their jobs as `take_expired_claims` does."""
    query = (
        select(R.c.id, R.c.job_id, R.c.attempt)
        .where(R.c.status == RunStatus.RUNNING.value, R.c.deadline < before)
        .order_by(R.c.deadline)
        .limit(limit)
    )
    return _take(conn, query)


def _take(conn: Connection, query: Select[Any]) -> list[Claim]:
    rows = list(conn.execute(_lock_free(query)))
    if not rows:
        return []
    jobs = _lock_free(select(J.c.id).where(J.c.id.in_({row.job_id for row in rows})))
    free_jobs = set(conn.execute(jobs).scalars())
    return [
        Claim(job=get_claimed_job(conn, row.job_id), run_id=row.id, attempt=row.attempt)
        for row in rows
        if row.job_id in free_jobs
    ]


def list_workers(
    conn: Connection, *, include_stopped: bool, heard_since: datetime
) -> list[WorkerRecord]:
    """Live workers: not stopped, and heard from since `heard_since` (one that fell silent
    is not listed even before a reaper marks it stopped); `include_stopped` adds the rest."""
    query = select(W).order_by(W.c.id)
    if not include_stopped:
        query = query.where(W.c.stopped.is_(None), W.c.heartbeat >= heard_since)
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
