"""The worker's use cases: claim a job, record its process and output, and finish it."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from jobyard.domain.models import ClaimedJob, Package, RunProcess, evolve
from jobyard.domain.run_end import (
    Backoff,
    Decision,
    Ended,
    ProcessEnd,
    RetryPolicy,
    RunEnd,
    decide,
    ended_statuses,
    may_be_retried,
)
from jobyard.domain.statuses import JobStatus
from jobyard.errors import NotFound
from jobyard.services import tokens
from jobyard.services.runtime import Runtime, utcnow
from jobyard.services.worker_registry import WorkerIdentity
from jobyard.store import catalog, claimed_jobs, db, fleet, notify, queue, runs, transitions
from jobyard.store.queue import Claim

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Work:
    """A claimed job, the token its process reports on itself with, who holds it, and until
    when its lease runs (seconds since the epoch) unless renewed."""

    claim: Claim
    token: str
    lease_until: float
    worker_id: int | None = None


REAP_BATCH = 100
STOPPED_RENEWING = "its worker stopped renewing the lease"
PAST_TIMEOUT = "past its timeout: ended by the reaper"


# Whether a secret is the token of the run that stores this hash (see tokens.is_run_token).
RunTokenCheck = Callable[[str, str], bool]
# Stops what the given runs' processes left running on this host (see worker/survivors.py),
# knowing each run's process by the token it started with.
StopSurvivors = Callable[[Sequence[RunProcess], RunTokenCheck], None]


def reap_expired(rt: Runtime, *, stop_survivors: StopSurvivors | None = None) -> int:
    """End runs whose lease lapsed (their worker is gone): retried if allowed, else lost; and,
    as a backstop, runs long past their timeout. Mark workers that fell silent stopped.
    Every worker runs this. One transaction takes the rows and ends them, taking only rows
    nobody else holds: a worker frozen mid-transaction holds its rows' locks, and the reaper
    leaves those rows for a later round rather than wait (the database ends a session idle in
    a transaction after `JOBYARD_DB_IDLE_IN_TRANSACTION_SECONDS`, releasing them).

    Runs of a dead worker of this host may still have processes here: `stop_survivors`
    stops them before the runs end (and may be retried)."""
    now = utcnow()
    try:
        with rt.db.transaction() as conn:
            endings, retrying = _reap_in(conn, rt, now=now, stop_survivors=stop_survivors)
    except Exception as error:
        if worth_retrying(error):
            raise
        logger.exception("reaping failed; ending the runs one by one")
        with rt.db.read() as conn:
            endings = _reapable(conn, rt, now=now)
        return len(_end_one_by_one(rt, endings))
    if retrying:
        rt.wakeup.notify()
    return len(endings)


def _reap_in(
    conn: Connection, rt: Runtime, *, now: datetime, stop_survivors: StopSurvivors | None
) -> tuple[list[Ending], bool]:
    """Take the runs to reap and end them; say whether any job went back to pending."""
    endings = _reapable(conn, rt, now=now)
    if stop_survivors is not None:
        lost = [e.claim.run_id for e in endings if e.end.how is Ended.LOST]
        here = queue.processes_on_host(conn, lost, socket.gethostname())
        if here:
            stop_survivors(here, functools.partial(tokens.is_run_token, rt))
    _, retrying = _end_in(conn, rt, endings, now=now)
    silent_since = now - timedelta(seconds=rt.settings.lease_seconds)
    fleet.mark_silent_stopped(conn, heard_before=silent_since, at=now)
    return endings, retrying


def _reapable(conn: Connection, rt: Runtime, *, now: datetime) -> list[Ending]:
    """The runs to end now (locked with their jobs on PostgreSQL), each with how it ends."""
    # A worker enforces timeouts itself; this margin leaves it time to (SIGTERM, grace, KILL).
    margin = timedelta(seconds=rt.settings.cancel_grace_seconds + rt.settings.lease_seconds)
    expired = fleet.take_expired_claims(conn, now=now, limit=REAP_BATCH)
    taken = {claim.run_id for claim in expired}
    overdue = [
        claim
        for claim in fleet.take_overdue_claims(conn, before=now - margin, limit=REAP_BATCH)
        if claim.run_id not in taken
    ]
    return [Ending(c, RunEnd(Ended.LOST, reason=STOPPED_RENEWING)) for c in expired] + [
        Ending(c, RunEnd(Ended.OVERDUE, reason=PAST_TIMEOUT)) for c in overdue
    ]


def claim_jobs(rt: Runtime, *, worker: WorkerIdentity, limit: int) -> list[Work]:
    """Take up to `limit` runnable jobs, lease them and give each run a job token, in one
    transaction."""
    with rt.db.transaction() as conn:
        return _claim_in(conn, rt, worker=worker, limit=limit, now=utcnow())


def _claim_in(
    conn: Connection, rt: Runtime, *, worker: WorkerIdentity, limit: int, now: datetime
) -> list[Work]:
    jobs = queue.claimable_jobs(conn, now=now, pg=rt.pg, limit=limit)
    if not jobs:
        return []
    secrets = tokens.new_job_tokens(len(jobs))
    lease_until = now + timedelta(seconds=rt.settings.lease_seconds)
    claims = queue.start_runs(
        conn,
        jobs,
        token_hashes=[tokens.hash_token(rt, secret) for secret in secrets],
        now=now,
        worker=worker.name,
        worker_id=worker.id,
        lease_until=lease_until,
    )
    return [
        Work(claim=claim, token=token, lease_until=lease_until.timestamp(), worker_id=worker.id)
        for claim, token in zip(claims, secrets, strict=True)
    ]


def claim_job(rt: Runtime, *, worker: WorkerIdentity) -> Work | None:
    """Take the next runnable job, if there is one."""
    works = claim_jobs(rt, worker=worker, limit=1)
    return works[0] if works else None


def next_due(rt: Runtime, *, after: datetime) -> datetime | None:
    """When the next job waiting for a later time than `after` comes due: one launched for
    later, or waiting to be retried; None when none waits."""
    with rt.db.read_one() as conn:
        return queue.next_due(conn, after, pg=rt.pg)


def record_processes(rt: Runtime, *, processes: Mapping[int, tuple[int, float]]) -> None:
    """Process ids of running runs and when each came to exist (seconds since the epoch), by
    run id (batched: a short job's come with its end)."""
    if processes:
        spawned = {run_id: (pid, _spawn_time(at)) for run_id, (pid, at) in processes.items()}
        with rt.db.transaction() as conn:
            queue.set_processes(conn, spawned)


def _spawn_time(at: float) -> datetime:
    """When a process came to exist, from the seconds since the epoch its spawner gave."""
    return datetime.fromtimestamp(at, UTC)


def save_output(rt: Runtime, *, run_id: int, chunks: Sequence[tuple[str, int, bytes]]) -> None:
    with rt.db.transaction() as conn:
        runs.append_output(conn, run_id, chunks)


def cancels_requested(rt: Runtime, *, job_ids: Sequence[int]) -> list[int]:
    with rt.db.read() as conn:
        return queue.running_jobs_to_cancel(conn, job_ids)


HANDED_BACK = "handed back by a worker shutting down"
LATE_TO_START = "handed back: claimed too late to start within its lease"
Chunk = tuple[str, int, bytes]  # stream, offset in the combined log, bytes


@dataclass(frozen=True)
class Ending:
    """A run to end: how it ended (`domain.run_end` decides what that means), the worker
    writing it (refused if it lost the run's lease), and the last of its output."""

    claim: Claim
    end: RunEnd
    worker_id: int | None = None
    output: Sequence[Chunk] = ()


def finish_claim(
    rt: Runtime, *, claim: Claim, result: ProcessEnd, worker_id: int | None = None
) -> JobStatus:
    """Close the run and move the job on: to its end, or back to pending for a retry. A
    worker that lost the run's lease is refused (the job's status is returned unchanged)."""
    return end_runs(rt, [ending_of(claim, result, worker_id=worker_id)])[claim.run_id]


def ending_of(
    claim: Claim,
    result: ProcessEnd,
    *,
    worker_id: int | None,
    output: Sequence[Chunk] = (),
) -> Ending:
    """The ending of a run whose process ended as `result` says."""
    return Ending(claim, RunEnd(Ended.PROCESS, result), worker_id, output)


def hand_back_ending(
    claim: Claim,
    result: ProcessEnd,
    *,
    worker_id: int | None,
    output: Sequence[Chunk] = (),
    reason: str = HANDED_BACK,
) -> Ending:
    """A worker gives a job back (shutting down, or too late to start it): its run ends, the
    job waits for another."""
    return Ending(claim, RunEnd(Ended.HANDED_BACK, result, reason), worker_id, output)


def end_runs(rt: Runtime, endings: Sequence[Ending]) -> dict[int, JobStatus]:
    """End runs together (one transaction for a batch); return each job's new status by run
    id. If the batch fails, each is tried alone so one bad run cannot hold up the others;
    a run that fails alone too is logged and left out of the answer."""
    return end_and_claim(rt, endings, worker=None, limit=0)[0]


def worth_retrying(error: BaseException) -> bool:
    """Whether a write failed because the database could not be reached or could not serve
    it just then (an outage, a broken connection, a lock timeout): the same write later may
    succeed. Otherwise the write itself was refused."""
    return db.transient(error)


def end_and_claim(
    rt: Runtime, endings: Sequence[Ending], *, worker: WorkerIdentity | None, limit: int
) -> tuple[dict[int, JobStatus], list[Work]]:
    """End runs, then claim up to `limit` jobs for `worker`, in one transaction: a busy
    worker's whole turn at the database. The ends come first, so that the interfaces and
    package room they free are already there for the claim.

    A run missing from the answer was not written: the caller keeps its end and tries again.
    Trying again is safe whatever happened: a run that is already closed (by an earlier try
    whose commit was not acknowledged, or by the reaper) is not closed twice, and its output
    is not stored twice. When the database cannot be reached, the error propagates."""
    try:
        with rt.db.transaction() as conn:
            now = utcnow()
            statuses, retrying = _end_in(conn, rt, endings, now=now)
            works = []
            if worker is not None and limit:
                works = _claim_in(conn, rt, worker=worker, limit=limit, now=now)
    except Exception as error:
        if len(endings) <= 1 or worth_retrying(error):
            raise
        logger.exception("ending %d runs together failed; ending them one by one", len(endings))
        return _end_one_by_one(rt, endings), []
    if retrying:
        rt.wakeup.notify()
    return statuses, works


def _end_one_by_one(rt: Runtime, endings: Sequence[Ending]) -> dict[int, JobStatus]:
    """Each run's end in a transaction of its own: the ones the database refuses are left
    out of the answer (and logged); an outage propagates, the rest untried."""
    statuses: dict[int, JobStatus] = {}
    for ending in endings:
        try:
            statuses |= end_and_claim(rt, [ending], worker=None, limit=0)[0]
        except Exception as error:
            if worth_retrying(error):
                raise
            logger.exception("job %s: its end could not be recorded", ending.claim.job.id)
    return statuses


def _end_in(
    conn: Connection, rt: Runtime, endings: Sequence[Ending], *, now: datetime
) -> tuple[dict[int, JobStatus], bool]:
    """Close the runs and move their jobs on; say whether any job went back to pending."""
    statuses: dict[int, JobStatus] = {}
    if not endings:
        return statuses, False
    closed = transitions.close_runs(conn, [_run_end(e) for e in endings], at=now)
    for ending in endings:  # a run closed before keeps the output stored with its end
        if ending.claim.run_id in closed:
            runs.append_output(conn, ending.claim.run_id, ending.output)
    states = claimed_jobs.job_states(conn, [e.claim.job.id for e in endings])
    changes: list[transitions.JobChange] = []
    for ending in endings:
        claim = ending.claim
        state = states.get(claim.job.id)
        job = None if state is None else _as_now(claim.job, state)
        if job is None:
            statuses[claim.run_id] = JobStatus.LOST  # deleted meanwhile
        elif not _still_ours(claim, job, closed):
            logger.warning("run %s of job %s was already ended elsewhere", claim.run_id, job.id)
            statuses[claim.run_id] = job.status
        else:
            change = _job_change(ending, job, _decision(conn, ending, job), now)
            changes.append(change)
            statuses[claim.run_id] = change.new
    queue.release_interfaces(conn, [c.job.id for c in changes if c.job.interface_names])
    transitions.apply_changes(conn, changes, at=now)
    retrying = any(c.new is JobStatus.PENDING for c in changes)
    if retrying:
        notify.announce_work(conn)
    return statuses, retrying


def _as_now(job: ClaimedJob, state: claimed_jobs.JobState) -> ClaimedJob:
    return evolve(job, status=state.status, attempts=state.attempts, outcome=state.outcome)


def _still_ours(claim: Claim, job: ClaimedJob, closed: set[int]) -> bool:
    """Whether this run was open until now and is still the job's current attempt."""
    return (
        claim.run_id in closed and job.status is JobStatus.RUNNING and job.attempts == claim.attempt
    )


def _run_end(ending: Ending) -> transitions.RunEnd:
    process = ending.end.process
    return transitions.RunEnd(
        run_id=ending.claim.run_id,
        status=ended_statuses(ending.end)[0],
        exit_code=process.exit_code,
        signal=process.signal,
        output_bytes=process.output_bytes,
        truncated=process.truncated,
        process_id=process.pid,
        spawned=_spawn_time(process.spawned) if process.spawned else None,
        worker_id=ending.worker_id,
    )


def _decision(conn: Connection, ending: Ending, job: ClaimedJob) -> Decision:
    """Where the run and its job go; the package's retry policy is read only when it has
    a say (most runs end without one)."""
    policy = RetryPolicy()
    if may_be_retried(ending.end, job.outcome):
        package = _package_or_none(conn, job.package_id)
        if package is not None:
            policy = RetryPolicy(
                max_attempts=package.max_attempts,
                retry_delay_seconds=package.retry_delay_seconds,
                rerun_lost=package.rerun_lost,
                backoff=Backoff(package.retry_backoff),
                retry_delay_max_seconds=package.retry_delay_max_seconds,
                retry_jitter=package.retry_jitter,
            )
    draw = _RANDOM.random() if policy.retry_jitter else 0.0
    return decide(ending.end, attempt=job.attempts, outcome=job.outcome, policy=policy, draw=draw)


_RANDOM = secrets.SystemRandom()  # a retry's jitter


def _job_change(
    ending: Ending, job: ClaimedJob, decision: Decision, now: datetime
) -> transitions.JobChange:
    """The decision as the columns it changes: a hand-back (not a failed attempt) is due
    at once with any cancel forgotten; a retry after its delay; an end is finished."""
    values: dict[str, object] = {"exit_code": ending.end.process.exit_code}
    if ending.end.how is Ended.HANDED_BACK:
        values |= {"run_at": now, "cancel_requested": None}
    elif decision.retry_delay is not None:
        values |= {"run_at": now + timedelta(seconds=decision.retry_delay)}
    else:
        values |= {"finished": now}
    return transitions.JobChange(job, decision.job_status, values, decision.reason)


def _package_or_none(conn: Connection, package_id: int) -> Package | None:
    """The job's package, if it still exists (a finished job may outlive it)."""
    if not package_id:
        return None
    try:
        return catalog.get_package(conn, package_id, tenant_id=None)
    except NotFound:
        return None


def recover_orphans(rt: Runtime, *, stop_survivors: StopSurvivors | None = None) -> int:
    """End the runs that a dead jobyard process on this host left running.

    On one host a worker's pid tells whether it is alive; runs of a dead worker are lost
    (or retried if their package allows), so no job stays `running` after a crash. Their
    processes may live on: `stop_survivors` (called at every start, with the dead runs'
    processes) stops them first, so that a retry never runs beside them.
    """
    host = socket.gethostname()
    with rt.db.read() as conn:
        orphans = queue.running_claims_on_host(conn, host)
        dead = [claim for claim, worker_pid in orphans if not _pid_alive(worker_pid)]
        processes = queue.processes_on_host(conn, [c.run_id for c in dead], host)
    if stop_survivors is not None:
        stop_survivors(processes, functools.partial(tokens.is_run_token, rt))
    died = RunEnd(Ended.LOST, reason="its worker process died")
    endings = [Ending(claim, died) for claim in dead]
    if endings:
        end_runs(rt, endings)
    return len(endings)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a previous incarnation with our pid: certainly not us
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
