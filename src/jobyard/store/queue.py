"""The queue: pending jobs claimed in claim order within their packages' limits and their
interfaces, a run started for each; what the workers record of their runs while they run
(process ids); and what a restart or a reaper finds of a host's runs."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from jobyard.domain.models import (
    ClaimedJob,
    PackageKind,
    RunProcess,
    evolve,
)
from jobyard.domain.statuses import JobStatus, RunStatus
from jobyard.store import driver, tables, transitions
from jobyard.store.claimed_jobs import (
    CLAIMED_JOB_COLUMNS,
    claimed_job_from_row,
    get_claimed_job,
)
from jobyard.store.direct import DirectStatement, direct
from jobyard.store.jobs import J
from jobyard.store.types import UTCDateTime, in_ids

R = tables.runs


@dataclass(frozen=True)
class Claim:
    """A job a worker has taken, and the run that records this attempt."""

    job: ClaimedJob
    run_id: int
    attempt: int


def _claimable(now: Any) -> Any:
    """Pending command jobs that are due, whose interfaces are free, within package limits."""
    locked = (
        select(tables.job_interfaces.c.job_id)
        .join(tables.interface_locks, tables.interface_locks.c.name == tables.job_interfaces.c.name)
        .where(tables.job_interfaces.c.job_id == J.c.id)
    )
    return and_(
        J.c.status == _literal(JobStatus.PENDING.value),
        J.c.kind == _literal(PackageKind.COMMAND.value),
        J.c.run_at <= now,
        ~exists(locked),
        or_(J.c.package_id.is_(None), J.c.package_id.not_in(_packages_at_their_limit())),
    )


def _packages_at_their_limit() -> Select[Any]:
    """The packages with as many running jobs as their concurrency limit allows, found once
    for the whole claim from the running jobs alone. Counted for each job a claim walks
    past instead, a limited package's backlog would cost each claim a count of the
    package's jobs per waiting job (2,000 waiting: a third of a second on SQLite)."""
    packages = tables.packages
    running = J.alias("running")
    counts = (
        select(running.c.package_id, func.count().label("running"))
        .where(running.c.status == _literal(JobStatus.RUNNING.value))
        .group_by(running.c.package_id)
        .subquery()
    )
    return (
        select(packages.c.id)
        .select_from(packages.outerjoin(counts, counts.c.package_id == packages.c.id))
        .where(
            packages.c.concurrency_limit.is_not(None),
            func.coalesce(counts.c.running, 0) >= packages.c.concurrency_limit,
        )
    )


def _literal(value: str) -> Any:
    """A constant written into the SQL, not bound: only then can both databases see that the
    query matches the partial index of pending jobs and walk it in claim order, unsorted."""
    return literal_column(f"'{value}'")


def _package_limit() -> Any:
    packages = tables.packages
    return (
        select(packages.c.concurrency_limit)
        .where(packages.c.id == J.c.package_id)
        .scalar_subquery()
        .label("package_concurrency_limit")
    )


def _next_claimable() -> Any:
    return (
        select(*CLAIMED_JOB_COLUMNS, _package_limit())
        .where(_claimable(bindparam("now", type_=UTCDateTime())))
        .order_by(J.c.priority.desc(), J.c.run_at, J.c.id)
        .limit(bindparam("limit", type_=Integer()))
    )


def _sqlite_indexed(query: Select[Any]) -> Any:
    """A claim query for SQLite, told to walk the index of pending jobs in claim order.

    Without statistics SQLite guesses that `status = 'pending'` on the plain status index
    finds a few rows, then sorts every pending job for each claim (about 1 ms per claim with
    3,000 waiting). SQLAlchemy cannot write SQLite's INDEXED BY, so it goes into the SQL here.
    """
    compiled = query.compile(dialect=sqlite.dialect(paramstyle="named"))
    sql = str(compiled)
    indexed = sql.replace("\nFROM jobs \n", "\nFROM jobs INDEXED BY ix_jobs_claimable \n", 1)
    if indexed == sql:
        raise RuntimeError("the claim query no longer reads FROM jobs")
    given = {"now", "limit", "level"}
    fixed = {name: value for name, value in compiled.params.items() if name not in given}
    result_columns = [column(c.name, c.type) for c in query.selected_columns]
    bound = [bindparam("now", type_=UTCDateTime()), bindparam("limit"), bindparam("level")]
    return text(indexed).bindparams(*bound, **fixed).columns(*result_columns)


def _pending_jobs(pg: bool) -> str:
    """The pending jobs, read along their index (SQLite is told to: see `_sqlite_indexed`)."""
    indexed = "" if pg else " INDEXED BY ix_jobs_claimable"
    return f"jobs{indexed} WHERE status = 'pending'"


def _levels_query(pg: bool) -> str:
    """The priorities of the pending jobs, highest first, read along the index of pending
    jobs one step each (`levels`, a common table expression)."""
    pending = _pending_jobs(pg)
    return (
        "WITH RECURSIVE levels(p) AS ("
        f" SELECT (SELECT priority FROM {pending} ORDER BY priority DESC LIMIT 1)"
        " UNION ALL"
        f" SELECT (SELECT priority FROM {pending} AND priority < levels.p"
        " ORDER BY priority DESC LIMIT 1)"
        " FROM levels WHERE levels.p IS NOT NULL)"
    )


@functools.cache  # built once: constructing it costs more than running it
def _pg_claim_query() -> Any:
    return _next_claimable().with_for_update(skip_locked=True, of=J)


_PG_CLAIM = DirectStatement(_pg_claim_query())
# SQLite's claim goes one priority at a time (see `_sqlite_claimable`).
_SQLITE_LEVELS = DirectStatement(
    text(f"{_levels_query(False)} SELECT p FROM levels WHERE p IS NOT NULL").columns(
        column("p", Integer())
    )
)
_SQLITE_CLAIM_OF_LEVEL = DirectStatement(
    _sqlite_indexed(_next_claimable().where(J.c.priority == bindparam("level", type_=Integer())))
)


def next_claimable(conn: Connection, now: datetime, *, pg: bool, limit: int) -> list[Any]:
    """The next jobs to run (with their package's concurrency limit), locked on PostgreSQL:
    named tuples with the claim's columns (the query runs on the driver)."""
    on_driver = direct(conn)
    if not pg:
        return _sqlite_claimable(on_driver, now, limit)
    # A queue's statistics are stale by nature: analysed while few jobs waited, PostgreSQL
    # plans a bitmap scan and a sort of every pending job (25 ms a claim with 5,000 waiting)
    # instead of walking the pending index in claim order. So sorting is ruled out for this
    # one query, and only for it: plans cached later (a trigger's) must not inherit it.
    on_driver.exec_driver_sql("SET LOCAL enable_sort = off")
    rows = _PG_CLAIM.rows(on_driver, {"now": now, "limit": limit})  # a failure rolls back the SET
    on_driver.exec_driver_sql("SET LOCAL enable_sort = on")
    return rows


def _sqlite_claimable(on_driver: Any, now: datetime, limit: int) -> list[Any]:
    """SQLite's claim, one priority after the other: within a priority the due jobs come
    first in the index, and the walk stops at the first job not due yet. Read across
    priorities at once, a claim that finds fewer due jobs than it asks for (most claims of
    one-by-one launches) walks on through every job waiting for a later time: with 50,000
    of them, 5 ms a turn instead of 0.5. (On PostgreSQL a priority at a time costs a round
    trip each; its claim stays one statement.)"""
    rows: list[Any] = []
    for (level,) in _SQLITE_LEVELS.rows(on_driver, {}):
        given = {"now": now, "limit": limit - len(rows), "level": level}
        rows += _SQLITE_CLAIM_OF_LEVEL.rows(on_driver, given)
        if len(rows) >= limit:
            break
    return rows


def _next_due_query(pg: bool) -> Any:
    """The earliest `run_at` after `after` of a pending command job: in each priority (see
    `_levels_query`) the first job due after it, another step into the index; not a walk
    through every job waiting."""
    sql = (
        f"{_levels_query(pg)}"
        f" SELECT min((SELECT run_at FROM {_pending_jobs(pg)}"
        " AND priority = levels.p AND run_at > :after AND kind = 'command'"
        " ORDER BY run_at LIMIT 1)) AS due"
        " FROM levels WHERE levels.p IS NOT NULL"
    )
    return (
        text(sql)
        .bindparams(bindparam("after", type_=UTCDateTime()))
        .columns(column("due", UTCDateTime()))
    )


_NEXT_DUE = {pg: _next_due_query(pg) for pg in (False, True)}


def next_due(conn: Connection, after: datetime, *, pg: bool) -> datetime | None:
    """When the next job waiting for a time later than `after` comes due (None: none
    waits): what an idle worker sleeps until."""
    due: datetime | None = conn.execute(_NEXT_DUE[pg], {"after": after}).scalar_one()
    return due


def _within_package_limit(conn: Connection, job: ClaimedJob) -> bool:
    """On PostgreSQL two workers could both see room under a package's concurrency limit;
    locking the package row makes them count one after the other."""
    packages = tables.packages
    limit_of = select(packages.c.concurrency_limit).where(packages.c.id == job.package_id)
    limit = conn.execute(limit_of.with_for_update()).scalar_one_or_none()
    if limit is None:
        return True
    running = conn.execute(
        select(func.count()).where(
            J.c.package_id == job.package_id, J.c.status == JobStatus.RUNNING.value
        )
    ).scalar_one()
    return int(running) < int(limit)


def _claimable_jobs(conn: Connection, rows: Sequence[Any], *, pg: bool) -> list[ClaimedJob]:
    """Of the candidates, those this batch may take: the query saw room under each package's
    concurrency limit for one more job, so a limited package gets at most one per batch; and
    a job whose interfaces another job holds (or took earlier in this batch) waits."""
    chosen: list[ClaimedJob] = []
    limited: set[int] = set()
    for row in rows:
        job = claimed_job_from_row(row)
        if row.package_concurrency_limit is not None:
            if job.package_id in limited:
                continue
            # No lock without a limit, so claims of one package never queue.
            if pg and not _within_package_limit(conn, job):
                continue
            limited.add(job.package_id)
        if job.interface_names and not _lock_interfaces(conn, job):
            continue
        chosen.append(job)
    return chosen


def claimable_jobs(conn: Connection, *, now: datetime, pg: bool, limit: int) -> list[ClaimedJob]:
    """Up to `limit` jobs to run now, locked on PostgreSQL until the transaction ends."""
    return _claimable_jobs(conn, next_claimable(conn, now, pg=pg, limit=limit), pg=pg)


def start_runs(
    conn: Connection,
    jobs: Sequence[ClaimedJob],
    *,
    token_hashes: Sequence[str],
    now: datetime,
    worker: str,
    worker_id: int | None = None,
    lease_until: datetime | None = None,
) -> list[Claim]:
    """Claim these jobs (from `claimable_jobs`, in this transaction): a run for each, with
    the hash of its job token, and each job moved to running. A few statements for the
    whole batch, whatever its size."""
    if not jobs:
        return []
    run_key = int(now.timestamp())
    inserted = INSERT_RUNS.execute(
        direct(conn),
        [
            (
                job.id,
                job.attempts + 1,
                run_key,
                RunStatus.RUNNING.value,
                worker,
                worker_id,
                lease_until,
                _deadline(job, now),
                now,
                token_hash,
            )
            for job, token_hash in zip(jobs, token_hashes, strict=True)
        ],
    )
    run_ids = {job_id: run_id for run_id, job_id in inserted}
    transitions.mark_claimed(conn, jobs, at=now, worker=worker)
    return [
        Claim(
            job=evolve(job, status=JobStatus.RUNNING, attempts=job.attempts + 1),
            run_id=run_ids[job.id],
            attempt=job.attempts + 1,
        )
        for job in jobs
    ]


def _deadline(job: ClaimedJob, started: datetime) -> datetime | None:
    return None if job.timeout_seconds is None else started + timedelta(seconds=job.timeout_seconds)


def _lock_interfaces(conn: Connection, job: ClaimedJob) -> bool:
    """Take the job's interfaces; False when another worker took one first."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(tables.interface_locks),
                [{"name": n, "job_id": job.id} for n in job.interface_names],
            )
    except IntegrityError:
        return False
    return True


def set_processes(conn: Connection, processes: Mapping[int, tuple[int, datetime]]) -> None:
    """Record the process id of running runs and when each process came to exist, by run id."""
    if processes:
        rows = [
            {"b_run_id": run_id, "v_pid": pid, "v_spawned": spawned}
            for run_id, (pid, spawned) in processes.items()
        ]
        conn.execute(_SET_PROCESS, rows)


_SET_PROCESS = (
    update(R)
    .where(R.c.id == bindparam("b_run_id"), R.c.process_id == 0)
    .values(process_id=bindparam("v_pid"), spawned=bindparam("v_spawned"))
)


# Returns (id, job_id): which new run is whose.
INSERT_RUNS = driver.RowsInsert(
    R,
    (
        "job_id",
        "attempt",
        "run_key",
        "status",
        "worker",
        "worker_id",
        "lease_expires",
        "deadline",
        "started",
        "token_hash",
    ),
    returning=("id", "job_id"),
)


def release_interfaces(conn: Connection, job_ids: Sequence[int]) -> None:
    if job_ids:
        conn.execute(_RELEASE_INTERFACES, {"ids": list(job_ids)})


_RELEASE_INTERFACES = delete(tables.interface_locks).where(
    in_ids(tables.interface_locks.c.job_id, "ids")
)


def running_jobs_to_cancel(conn: Connection, job_ids: Sequence[int]) -> list[int]:
    """Of the given running jobs, those whose cancel has been asked for."""
    if not job_ids:
        return []
    query = select(J.c.id).where(J.c.id.in_(job_ids), J.c.cancel_requested.is_not(None))
    return [row.id for row in conn.execute(query)]


def running_claims_on_host(conn: Connection, host: str) -> list[tuple[Claim, int]]:
    """Running runs whose worker named this host, with that worker's pid."""
    query = select(R.c.id, R.c.job_id, R.c.attempt, R.c.worker).where(
        R.c.status == RunStatus.RUNNING.value, R.c.worker.like(f"{host}:%")
    )
    found = []
    for row in conn.execute(query):
        pid_text = row.worker.rsplit(":", 1)[1]
        if pid_text.isdigit():
            claim = Claim(job=get_claimed_job(conn, row.job_id), run_id=row.id, attempt=row.attempt)
            found.append((claim, int(pid_text)))
    return found


def processes_on_host(conn: Connection, run_ids: Sequence[int], host: str) -> list[RunProcess]:
    """Of these runs, those whose worker ran on `host`, with their recorded processes."""
    if not run_ids:
        return []
    query = select(R.c.id, R.c.process_id, R.c.started, R.c.token_hash).where(
        R.c.id.in_(list(run_ids)), R.c.worker.like(f"{host}:%")
    )
    return [
        RunProcess(row.id, row.process_id or 0, row.started, row.token_hash)
        for row in conn.execute(query)
    ]
