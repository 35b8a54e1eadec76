"""What happens to a job after its launch, from outside: custom results appended to it,
an external job started, and the final outcome set against its package's result options."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from jobyard.domain.models import Job, JobResult, PackageKind
from jobyard.domain.outcomes import Outcome, check_outcome
from jobyard.domain.permissions import Principal, Scope, require_on_job
from jobyard.domain.statuses import JobStatus, RunStatus
from jobyard.errors import NotFound, PayloadTooLarge, RuleViolation
from jobyard.services import audit
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, runs
from jobyard.store import jobs as job_store

MAX_RESULT_BYTES = 64 * 1024
EXTERNAL_WORKER = "external"


def append_result(
    rt: Runtime, *, actor: Principal, job_id: int, payload: Mapping[str, Any]
) -> JobResult:
    """Append a custom result (any JSON object) to a job, whatever its status."""
    require_on_job(actor, Scope.JOBS_WRITE, job_id, reporting=True)
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_RESULT_BYTES:
        raise PayloadTooLarge(f"a result payload may hold at most {MAX_RESULT_BYTES} bytes")
    with rt.db.transaction() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        result_id = job_store.insert_result(
            conn, job_id=job_id, user_id=actor.user_id, payload=payload, at=utcnow()
        )
        return next(r for r in job_store.list_results(conn, job_id) if r.id == result_id)


def list_results(rt: Runtime, *, actor: Principal, job_id: int) -> list[JobResult]:
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        return job_store.list_results(conn, job_id)


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
        if job.kind is PackageKind.EXTERNAL:
            _end_external(conn, job, outcome.status.job_status, actor=actor)
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
        job_store.transition(
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


def _end_external(conn: Connection, job: Job, status: JobStatus, *, actor: Principal) -> None:
    now = utcnow()
    run_status = RunStatus.CANCELLED if status is JobStatus.CANCELLED else RunStatus.COMPLETED
    latest = runs.latest_run(conn, job.id)
    if latest is not None:
        ending = runs.RunEnd(latest.id, run_status, None, None, output_bytes=0, truncated=False)
        runs.close_runs(conn, [ending], at=now)
    runs.release_interfaces(conn, [job.id])
    job_store.transition(
        conn,
        job,
        status,
        at=now,
        user_id=actor.user_id,
        reason=f"{status} by {actor.login}",
        values={"finished": now},
    )


def cancel_external(conn: Connection, job: Job, *, actor: Principal) -> None:
    """A running external job has no process to stop: it ends at once."""
    _end_external(conn, job, JobStatus.CANCELLED, actor=actor)
