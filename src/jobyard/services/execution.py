"""The worker's use cases: claim a job, record its process and output, and finish it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection

from jobyard.domain.models import Job, Package
from jobyard.domain.statuses import JobStatus, RunStatus, exit_status
from jobyard.errors import NotFound
from jobyard.services import accounts
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, fleet, notify, runs
from jobyard.store import jobs as job_store
from jobyard.store.runs import Claim

logger = logging.getLogger(__name__)

JOB_TOKEN_MARGIN = timedelta(minutes=5)  # a job token outlives its run's timeout by this much


@dataclass(frozen=True)
class RunResult:
    """How a run's process ended, as the supervisor saw it."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    cancelled: bool
    output_bytes: int
    truncated: bool
    process_id: int = 0


def worker_name() -> str:
    """How runs name the process that ran them (the pid also lets a restart on this host
    recognise runs its dead predecessor left)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class WorkerIdentity:
    """A registered worker: its row, and the name its runs carry."""

    id: int | None
    name: str


@dataclass(frozen=True)
class Work:
    """A claimed job, the token its process reports on itself with, and who holds it."""

    claim: Claim
    token: str
    worker_id: int | None = None


def register_worker(rt: Runtime, *, slots: int) -> WorkerIdentity:
    now = utcnow()
    name = worker_name()
    with rt.db.transaction() as conn:
        worker_id = fleet.insert_worker(
            conn,
            name=f"{name}:{now.timestamp():.6f}",
            host=socket.gethostname(),
            pid=os.getpid(),
            slots=slots,
            at=now,
        )
    return WorkerIdentity(id=worker_id, name=name)


def heartbeat(
    rt: Runtime, *, worker: WorkerIdentity, run_ids: Sequence[int], draining: bool
) -> set[int]:
    """Say this worker is alive and renew its runs' leases; return the runs it lost (the
    reaper ended them): their processes must be stopped, their results will be refused."""
    now = utcnow()
    until = now + timedelta(seconds=rt.settings.lease_seconds)
    with rt.db.transaction() as conn:
        if worker.id is not None:
            fleet.beat(conn, worker.id, at=now, draining=draining)
        if worker.id is None:
            return set()
        return fleet.renew_leases(conn, worker_id=worker.id, run_ids=run_ids, until=until)


def stop_worker(rt: Runtime, *, worker: WorkerIdentity) -> None:
    if worker.id is not None:
        with rt.db.transaction() as conn:
            fleet.mark_stopped(conn, worker.id, utcnow())


REAP_BATCH = 100


def reap_expired(rt: Runtime) -> int:
    """End runs whose lease lapsed (their worker is gone): retried if allowed, else lost; and,
    as a backstop, runs long past their timeout. Every worker runs this; closing a run is
    guarded, so each is ended once whichever reaper sees it first."""
    lost = RunResult(None, None, False, False, 0, False)
    now = utcnow()
    # A worker enforces timeouts itself; this margin leaves it time to (SIGTERM, grace, KILL).
    margin = timedelta(seconds=rt.settings.cancel_grace_seconds + rt.settings.lease_seconds)
    with rt.db.read() as conn:
        expired = fleet.expired_claims(conn, now=now, limit=REAP_BATCH)
        overdue = fleet.overdue_claims(conn, before=now - margin, limit=REAP_BATCH)
    endings = [
        (expired, JobStatus.LOST, RunStatus.LOST, "its worker stopped renewing the lease"),
        (
            overdue,
            JobStatus.TIMED_OUT,
            RunStatus.TIMED_OUT,
            "past its timeout: ended by the reaper",
        ),
    ]
    for claims, job_status, run_status, reason in endings:
        for claim in claims:
            _finish(
                rt,
                claim=claim,
                job_status=job_status,
                run_status=run_status,
                result=lost,
                reason=reason,
            )
    return len(expired) + len(overdue)


def claim_job(rt: Runtime, *, worker: WorkerIdentity) -> Work | None:
    """Take the next runnable job, lease it and give its run a job token, in one transaction."""
    now = utcnow()
    lease_until = now + timedelta(seconds=rt.settings.lease_seconds)
    with rt.db.transaction() as conn:
        claim = runs.claim_next(
            conn,
            now=now,
            worker=worker.name,
            pg=rt.pg,
            worker_id=worker.id,
            lease_until=lease_until,
        )
        if claim is None:
            return None
        timeout = claim.job.timeout_seconds
        lifetime = None if timeout is None else timedelta(seconds=timeout) + JOB_TOKEN_MARGIN
        token = accounts.issue_job_token(
            conn, job_id=claim.job.id, user_id=claim.job.user_id, at=now, lifetime=lifetime
        )
    return Work(claim=claim, token=token, worker_id=worker.id)


def record_processes(rt: Runtime, *, pids: Mapping[int, int]) -> None:
    """Process ids of running runs, by run id (batched: a short job's comes with its end)."""
    if pids:
        with rt.db.transaction() as conn:
            runs.set_process_ids(conn, pids)


def save_output(rt: Runtime, *, run_id: int, chunks: Sequence[tuple[str, int, bytes]]) -> None:
    with rt.db.transaction() as conn:
        runs.append_output(conn, run_id, chunks)


def cancels_requested(rt: Runtime, *, job_ids: Sequence[int]) -> list[int]:
    with rt.db.read() as conn:
        return runs.running_jobs_to_cancel(conn, job_ids)


RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.LOST})


def _next_status(ended: JobStatus, *, attempts: int, max_attempts: int) -> JobStatus:
    """How the attempt ended, or back to pending when the package allows another attempt."""
    return JobStatus.PENDING if ended in RETRYABLE and attempts < max_attempts else ended


def finish_claim(
    rt: Runtime, *, claim: Claim, result: RunResult, worker_id: int | None = None
) -> JobStatus:
    """Close the run and move the job on: to its end, or back to pending for a retry. A
    worker that lost the run's lease is refused (the job's status is returned unchanged)."""
    job_status, run_status = exit_status(
        exit_code=result.exit_code, timed_out=result.timed_out, cancelled=result.cancelled
    )
    return _finish(
        rt,
        claim=claim,
        job_status=job_status,
        run_status=run_status,
        result=result,
        worker_id=worker_id,
    )


def hand_back(rt: Runtime, *, claim: Claim, result: RunResult, worker_id: int | None) -> JobStatus:
    """A shutting-down worker gives a job back: its run ends, the job waits for another."""
    return _finish(
        rt,
        claim=claim,
        job_status=JobStatus.PENDING,
        run_status=RunStatus.LOST,
        result=result,
        worker_id=worker_id,
        reason="handed back by a worker shutting down",
    )


def _decided(job: Job, ended: JobStatus) -> JobStatus:
    """An outcome the job reported while it ran decides how it ends, unless it was cancelled."""
    if job.outcome is None or ended is JobStatus.CANCELLED:
        return ended
    return job.outcome.status.job_status


def _finish(
    rt: Runtime,
    *,
    claim: Claim,
    job_status: JobStatus,
    run_status: RunStatus,
    result: RunResult,
    worker_id: int | None = None,
    reason: str = "",
) -> JobStatus:
    now = utcnow()
    with rt.db.transaction() as conn:
        closed = runs.finish_run(
            conn,
            run_id=claim.run_id,
            status=run_status,
            at=now,
            exit_code=result.exit_code,
            signal=result.signal,
            output_bytes=result.output_bytes,
            truncated=result.truncated,
            worker_id=worker_id,
            process_id=result.process_id,
        )
        job = job_store.find_job(conn, claim.job.id)
        if job is None:
            return JobStatus.LOST  # deleted meanwhile (never while running through the API)
        if not closed or job.status is not JobStatus.RUNNING or job.attempts != claim.attempt:
            logger.warning("run %s of job %s was already ended elsewhere", claim.run_id, job.id)
            return job.status
        if job.interface_names:
            runs.release_interfaces(conn, job.id)
        accounts.end_job_tokens(conn, job_id=job.id)
        retryable = job_status in RETRYABLE and job.outcome is None
        package = _package_or_none(conn, job.package_id) if retryable else None
        max_attempts = package.max_attempts if package else 1
        if job_status is not JobStatus.PENDING:
            job_status = _decided(job, job_status)
        new = _next_status(job_status, attempts=job.attempts, max_attempts=max_attempts)
        values: dict[str, object] = {"exit_code": result.exit_code}
        if job_status is JobStatus.PENDING:  # handed back: not a failed attempt
            values |= {"run_at": now, "cancel_requested": None}
            why = reason
        elif new is JobStatus.PENDING:
            delay = package.retry_delay_seconds if package else 0.0
            values |= {"run_at": now + timedelta(seconds=delay)}
            why = f"attempt {job.attempts} {job_status} ({reason or _reason(result)}); retrying"
        else:
            values |= {"finished": now}
            why = reason or _reason(result)
        job_store.transition(conn, job, new, at=now, user_id=None, reason=why, values=values)
        if new is JobStatus.PENDING:
            notify.announce_work(conn)
    if new is JobStatus.PENDING:
        rt.wakeup.notify()
    return new


def _reason(result: RunResult) -> str:
    if result.cancelled:
        return "cancelled"
    if result.timed_out:
        return "timed out"
    if result.signal is not None:
        return f"killed by signal {result.signal}"
    return f"exit code {result.exit_code}"


def _package_or_none(conn: Connection, package_id: int) -> Package | None:
    """The job's package, if it still exists (a finished job may outlive it)."""
    if not package_id:
        return None
    try:
        return catalog.get_package(conn, package_id, tenant_id=None)
    except NotFound:
        return None


def recover_orphans(rt: Runtime) -> int:
    """End the runs that a dead jobyard process on this host left running.

    On one host a worker's pid tells whether it is alive; runs of a dead worker are lost
    (or retried if their package allows), so no job stays `running` after a crash.
    """
    host = socket.gethostname()
    with rt.db.read() as conn:
        orphans = runs.running_claims_on_host(conn, host)
    lost = RunResult(None, None, False, False, 0, False)
    count = 0
    for claim, worker_pid in orphans:
        if _pid_alive(worker_pid):
            continue
        _finish(
            rt,
            claim=claim,
            job_status=JobStatus.LOST,
            run_status=RunStatus.LOST,
            result=lost,
            reason="its worker process died",
        )
        count += 1
    return count


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
