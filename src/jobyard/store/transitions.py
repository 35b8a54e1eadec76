"""Every status a job or a run is written with, through the domain's transition tables
(`domain.statuses`): a job moved one at a time or in batches, jobs claimed, runs closed;
and the events that record each job's changes."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, select, update

from jobyard.domain import vocabulary
from jobyard.domain.models import ClaimedJob, Job
from jobyard.domain.statuses import (
    JobStatus,
    RunStatus,
    check_transition,
    run_sources_of,
    sources_of,
)
from jobyard.errors import Conflict, InvalidTransition, NotFound
from jobyard.store import driver, job_events, tables
from jobyard.store.direct import DirectStatement, direct
from jobyard.store.jobs import J, job_from_row
from jobyard.store.types import UTCDateTime, in_ids

R = tables.runs


def transition(
    conn: Connection,
    job: Job,
    new: JobStatus,
    *,
    at: datetime,
    user_id: int | None,
    reason: str,
    values: Mapping[str, Any] | None = None,
) -> Job:
    """Move a job to `new` if the table allows it from the status it has *in the database*;
    return the job as it now is."""
    values = values or {}
    statement = _transition_statement(new, tuple(sorted(values)))
    params = {"b_job_id": job.id, "b_at": at} | {f"v_{k}": v for k, v in values.items()}
    row = conn.execute(statement, params).first()
    if row is None:
        current = conn.execute(select(J.c.status).where(J.c.id == job.id)).scalar_one_or_none()
        if current is None:
            raise NotFound(vocabulary.NO_SUCH_JOB)
        raise InvalidTransition(f"job {job.id} is {current} and cannot become {new}")
    job_events.record_event(conn, job.id, job.status, new, at=at, user_id=user_id, reason=reason)
    return job_from_row(row)


_TRANSITIONS: dict[tuple[JobStatus, tuple[str, ...]], Any] = {}


def _transition_statement(new: JobStatus, keys: tuple[str, ...]) -> Any:
    """The guarded UPDATE for a transition, built once per target status and column set:
    workers run it for every job, and building statements costs more than running them."""
    statement = _TRANSITIONS.get((new, keys))
    if statement is None:
        allowed = [s.value for s in sources_of(new)]
        statement = (
            update(J)
            .where(J.c.id == bindparam("b_job_id"), J.c.status.in_(allowed))
            .values(
                status=new.value,
                updated=bindparam("b_at"),
                **{key: bindparam(f"v_{key}") for key in keys},
            )
            .returning(J)
        )
        _TRANSITIONS[(new, keys)] = statement
    return statement


@dataclass(frozen=True)
class JobChange:
    """One job's move to a new status, with the columns that change with it."""

    job: ClaimedJob  # as read in this transaction
    new: JobStatus
    values: Mapping[str, Any]
    reason: str


def apply_changes(conn: Connection, changes: Sequence[JobChange], *, at: datetime) -> None:
    """Move many jobs at once (workers end runs in batches): one UPDATE for each kind of
    change (most jobs of a batch end alike) and one INSERT of their events. Each job must
    still have the status it was read with; otherwise InvalidTransition is raised."""
    if not changes:
        return
    groups: dict[tuple[JobStatus, JobStatus, tuple[tuple[str, Any], ...]], list[int]] = {}
    for change in changes:
        check_transition(change.job.status, change.new)
        key = (change.new, change.job.status, tuple(sorted(change.values.items())))
        groups.setdefault(key, []).append(change.job.id)
    on_driver = direct(conn)
    for (new, old, values), job_ids in groups.items():
        statement = _batch_transition_statement(new, tuple(name for name, _ in values))
        params = {"b_job_ids": job_ids, "b_from": old.value, "b_at": at}
        params |= {f"v_{name}": value for name, value in values}
        changed = statement.execute(on_driver, params).rowcount
        if changed != len(job_ids):
            raise InvalidTransition(f"{len(job_ids) - changed} jobs changed status meanwhile")
    job_events.record_events(
        on_driver,
        [(change.job.id, change.job.status, change.new, change.reason) for change in changes],
        at=at,
    )


_BATCH_TRANSITIONS: dict[tuple[JobStatus, tuple[str, ...]], DirectStatement] = {}


def _batch_transition_statement(new: JobStatus, keys: tuple[str, ...]) -> DirectStatement:
    statement = _BATCH_TRANSITIONS.get((new, keys))
    if statement is None:
        statement = DirectStatement(
            update(J)
            .where(
                in_ids(J.c.id, "b_job_ids"),
                J.c.status == bindparam("b_from"),
            )
            .values(
                status=new.value,
                updated=bindparam("b_at"),
                **{key: bindparam(f"v_{key}") for key in keys},
            )
        )
        _BATCH_TRANSITIONS[(new, keys)] = statement
    return statement


def _literals(statuses: Iterable[JobStatus]) -> list[Any]:
    return [literal_column(f"'{status.value}'") for status in sorted(statuses)]


def _mark_claimed() -> Any:
    """One UPDATE for the whole batch: each job's new run is found by its next attempt
    number (SET expressions see the row as it was). Its guard, the statuses a job may be
    claimed from, is written into the SQL (not bound) so that both databases see that it
    matches the partial index of pending jobs."""
    new_run = (
        select(R.c.id)
        .where(R.c.job_id == J.c.id, R.c.attempt == J.c.attempts + 1)
        .scalar_subquery()
    )
    now = bindparam("now", type_=UTCDateTime())
    return (
        update(J)
        .where(in_ids(J.c.id, "ids"), J.c.status.in_(_literals(sources_of(JobStatus.RUNNING))))
        .values(
            status=JobStatus.RUNNING.value,
            updated=now,
            attempts=J.c.attempts + 1,
            current_run_id=new_run,
            started=func.coalesce(J.c.started, now),
            finished=None,
            exit_code=None,
        )
    )


_MARK_CLAIMED = DirectStatement(_mark_claimed())


def mark_claimed(
    conn: Connection, jobs: Sequence[ClaimedJob], *, at: datetime, worker: str
) -> None:
    """Move claimed jobs to running (their new runs inserted in this transaction)."""
    on_driver = direct(conn)
    claimed = _MARK_CLAIMED.execute(on_driver, {"ids": [job.id for job in jobs], "now": at})
    if claimed.rowcount != len(jobs):  # the claim query locked (or, on SQLite, saw) them
        raise Conflict("a claimed job changed meanwhile")
    reason = f"claimed by {worker}"
    job_events.record_events(
        on_driver, [(job.id, job.status, JobStatus.RUNNING, reason) for job in jobs], at=at
    )


@dataclass(frozen=True)
class RunEnd:
    """How one run ended, for closing many at once."""

    run_id: int
    status: RunStatus
    exit_code: int | None
    signal: int | None
    output_bytes: int
    truncated: bool
    process_id: int = 0
    spawned: datetime | None = None  # when its process came to exist, if it did
    worker_id: int | None = None  # when given, only if this worker still holds the run


def close_runs(conn: Connection, ends: Sequence[RunEnd], *, at: datetime) -> set[int]:
    """Close the given runs that are still running (and, where a worker is named, still held
    by it: a lost lease fences its writer); return the ids of those closed. One statement
    for the batch: each run's end is joined to it as a row of VALUES."""
    closed: set[int] = set()
    on_driver = direct(conn)
    finished = driver.time_value(conn, at)
    for start in range(0, len(ends), CLOSE_AT_ONCE):
        chunk = ends[start : start + CLOSE_AT_ONCE]
        values: list[Any] = [finished]
        for end in chunk:
            values += (
                end.run_id,
                end.status.value,
                end.exit_code,
                end.signal,
                end.output_bytes,
                end.truncated,
                end.process_id,
                end.worker_id,
                driver.time_value(conn, end.spawned),
            )
        sql = driver.sql(conn, _close_runs_sql(len(chunk), conn.dialect.name))
        closed.update(run_id for (run_id,) in on_driver.exec_driver_sql(sql, tuple(values)))
    return closed


# A run may end from these statuses (the domain's run table: from running alone).
_CLOSABLE = ", ".join(
    sorted({f"'{s.value}'" for ended in RunStatus if ended.terminal for s in run_sources_of(ended)})
)
CLOSE_AT_ONCE = 256  # runs per statement (9 values each: well under both drivers' caps)
# A time's type in VALUES: SQLite keeps times as text (a cast to a time type there would
# make it a number).
_TIME_TYPE = {"postgresql": "TIMESTAMPTZ"}


@functools.lru_cache(maxsize=64)
def _close_runs_sql(rows: int, dialect: str) -> str:
    """The typed casts let PostgreSQL know each VALUES column's type (a NULL has none)."""
    one = (
        "(CAST(? AS INTEGER), CAST(? AS VARCHAR), CAST(? AS INTEGER), CAST(? AS INTEGER),"
        " CAST(? AS BIGINT), CAST(? AS BOOLEAN), CAST(? AS INTEGER), CAST(? AS INTEGER),"
        f" CAST(? AS {_TIME_TYPE.get(dialect, 'TEXT')}))"
    )
    # VALUES columns are named column1, column2, ... on both databases. A run's process id
    # is recorded once; 0 means the worker never saw one. A concurrent closer (the reaper)
    # waits for the row and then finds it no longer running.
    return (
        "UPDATE runs SET status = ended.column2, finished = ?, exit_code = ended.column3,"
        " signal = ended.column4, output_bytes = ended.column5, truncated = ended.column6,"
        " process_id = COALESCE(NULLIF(ended.column7, 0), runs.process_id),"
        " spawned = COALESCE(runs.spawned, ended.column9)"
        f" FROM (VALUES {', '.join([one] * rows)}) AS ended"
        f" WHERE runs.id = ended.column1 AND runs.status IN ({_CLOSABLE})"
        " AND (ended.column8 IS NULL OR runs.worker_id = ended.column8)"
        " RETURNING runs.id"
    )
