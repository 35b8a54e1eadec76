"""A started job's outcome, set from outside (or by the job itself) against its package's
result options; and the life of an external job, which no worker runs: started, ended and
cancelled through the API."""

from __future__ import annotations

from sqlalchemy import Connection

from jobyard.domain.models import Job, PackageKind, evolve
from jobyard.domain.outcomes import Outcome, check_outcome
from jobyard.domain.permissions import Principal, Scope, require_on_job
from jobyard.domain.run_end import Ended, RetryPolicy, RunEnd, decide
from jobyard.domain.statuses import JobStatus
from jobyard.errors import NotFound, RuleViolation
from jobyard.services import audit, webhooks
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, queue, runs, transitions
from jobyard.store import jobs as job_store

EXTERNAL_WORKER = "external"


def _package_options(conn: Connection, job: Job) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    try:
        package = catalog.get_package(conn, job.package_id, tenant_id=job.tenant_id)
    except NotFound:
        return (), None  # the package is gone: no result can be checked against it
    return package.positive_results, package.negative_results


def set_outcome(rt: Runtime, *, actor: Principal, job_id: int, outcome: Outcome) -> Job:
    """Give a started job its final result. An external job ends now; a command job ends
    with this status when its process exits."""
    require_on_job(actor, Scope.JOBS_WRITE, job_id, reporting=True)
    now = utcnow()
    with rt.db.transaction() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        if job.status is not JobStatus.RUNNING:
            raise RuleViolation(
                f"job {job_id} is {job.status}: only a started job takes a result",
                field="status",
            )
        positive, negative = _package_options(conn, job)
        check_outcome(outcome, positive=positive, negative=negative)
        values = {"outcome_status": outcome.status.value, "outcome_result": outcome.result}
        job_store.update_job(conn, job_id, values | {"updated": now})
        audit.record(
            conn,
            actor,
            "job.outcome",
            "job",
            [job_id],
            detail={"status": outcome.status.value, "result": outcome.result},
        )
        # No status changes here (a command job ends later): the trigger on job events
        # writes no outbox row for it, so the outcome's event is written here, before an
        # external job's end (its job.finished) below.
        webhooks.record_outcome(conn, job, at=now)
        if job.kind is PackageKind.EXTERNAL:
            reported = evolve(job, outcome=outcome)
            _end_external(conn, reported, Ended.REPORTED, actor=actor)
        return job_store.get_job(conn, job_id)


def start_job(rt: Runtime, *, actor: Principal, job_id: int) -> Job:
    """Start an external job: no worker runs it, so whoever does says so here."""
    require_on_job(actor, Scope.JOBS_WRITE, job_id)
    now = utcnow()
    with rt.db.transaction() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        if job.kind is not PackageKind.EXTERNAL:
            raise RuleViolation(f"job {job_id} runs a command: a worker starts it", field="status")
        if job.status is not JobStatus.PENDING:
            raise RuleViolation(
                f"job {job_id} is {job.status}: only a pending job can be started",
                field="status",
            )
        runs.start_external_run(conn, job, worker=f"{EXTERNAL_WORKER}:{actor.login}", at=now)
        transitions.transition(
            conn,
            job,
            JobStatus.RUNNING,
            at=now,
            user_id=actor.user_id,
            reason=f"started by {actor.login}",
            values={"started": job.started or now},
        )
        audit.record(conn, actor, "job.start", "job", [job_id])
        return job_store.get_job(conn, job_id)


def _end_external(conn: Connection, job: Job, how: Ended, *, actor: Principal) -> None:
    """An external job's run ends as reported (its outcome, set just now) or cancelled."""
    now = utcnow()
    decision = decide(RunEnd(how), attempt=job.attempts, outcome=job.outcome, policy=RetryPolicy())
    latest = runs.latest_run(conn, job.id)
    if latest is not None:
        ending = transitions.RunEnd(
            latest.id, decision.run_status, None, None, output_bytes=0, truncated=False
        )
        transitions.close_runs(conn, [ending], at=now)
    queue.release_interfaces(conn, [job.id])
    transitions.transition(
        conn,
        job,
        decision.job_status,
        at=now,
        user_id=actor.user_id,
        reason=f"{decision.job_status} by {actor.login}",
        values={"finished": now},
    )


def cancel_external(conn: Connection, job: Job, *, actor: Principal) -> None:
    """A running external job has no process to stop: it ends at once."""
    _end_external(conn, job, Ended.CANCELLED, actor=actor)
