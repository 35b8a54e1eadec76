"""The worker's use cases: claim a job, record its process and output, and finish it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection

from jobyard.domain.models import Job, Package
from jobyard.domain.statuses import JobStatus, RunStatus, exit_status
from jobyard.errors import NotFound
from jobyard.services import accounts
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, runs
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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Work:
    """A claimed job, and the token its process reports on itself with."""

    claim: Claim
    token: str


def claim_job(rt: Runtime, *, worker: str) -> Work | None:
    """Take the next runnable job and give its run a job token, in one transaction."""
    now = utcnow()
    with rt.db.transaction() as conn:
        claim = runs.claim_next(conn, now=now, worker=worker, pg=rt.pg)
        if claim is None:
            return None
        timeout = claim.job.timeout_seconds
        lifetime = None if timeout is None else timedelta(seconds=timeout) + JOB_TOKEN_MARGIN
        token = accounts.issue_job_token(
            conn, job_id=claim.job.id, user_id=claim.job.user_id, at=now, lifetime=lifetime
        )
    return Work(claim=claim, token=token)


def record_process(rt: Runtime, *, run_id: int, pid: int) -> None:
    with rt.db.transaction() as conn:
        runs.set_process_id(conn, run_id, pid)


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


def finish_claim(rt: Runtime, *, claim: Claim, result: RunResult) -> JobStatus:
    """Close the run and move the job on: to its end, or back to pending for a retry."""
    job_status, run_status = exit_status(
        exit_code=result.exit_code, timed_out=result.timed_out, cancelled=result.cancelled
    )
    return _finish(rt, claim=claim, job_status=job_status, run_status=run_status, result=result)


def _decided(job: Job, ended: JobStatus) -> JobStatus:
    """An outcome the job reported while it ran decides how it ends, unless it was cancelled."""
    if job.outcome is None or ended is JobStatus.CANCELLED:
        return ended
    return job.outcome.status.job_status


def _finish(
    rt: Runtime, *, claim: Claim, job_status: JobStatus, run_status: RunStatus, result: RunResult
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
        )
        job = job_store.get_job(conn, claim.job.id)
        if not closed or job.status is not JobStatus.RUNNING:
            logger.warning("run %s of job %s was already ended elsewhere", claim.run_id, job.id)
            return job.status
        runs.release_interfaces(conn, job.id)
        accounts.revoke_job_tokens(conn, job_id=job.id, at=now)
        package = _package_or_none(conn, job.package_id)
        max_attempts = package.max_attempts if package else 1
        job_status = _decided(job, job_status)
        new = _next_status(job_status, attempts=job.attempts, max_attempts=max_attempts)
        values: dict[str, object] = {"exit_code": result.exit_code}
        if new is JobStatus.PENDING:
            delay = package.retry_delay_seconds if package else 0.0
            values |= {"run_at": now + timedelta(seconds=delay)}
            reason = f"attempt {job.attempts} {job_status}; retrying"
        else:
            values |= {"finished": now}
            reason = _reason(result)
        job_store.transition(conn, job, new, at=now, user_id=None, reason=reason, values=values)
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
        _finish(rt, claim=claim, job_status=JobStatus.LOST, run_status=RunStatus.LOST, result=lost)
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
