"""Read models: what a view shows, read in one transaction with a few batched queries, so a
request is one service call rather than one per row (a list of runs and each run's output, a
device's jobs and each job's output and results)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from jobyard.domain import filters
from jobyard.domain.listing import Listing
from jobyard.domain.models import Job, JobEvent, JobResult, Run
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal, Scope, require, require_on_job
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services import catalog
from jobyard.services.runtime import Runtime
from jobyard.store import job_events, runs
from jobyard.store import jobs as job_store
from jobyard.store import results as result_store


@dataclass(frozen=True)
class RunView:
    """A run, its job, and the first `output_cap` bytes of each of its streams."""

    run: Run
    job: Job
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class JobView:
    """A job, the first `stdout_cap` bytes of its latest run's stdout (empty without a run)
    and its custom results, newest first."""

    job: Job
    stdout: bytes
    results: list[JobResult]


def runs_with_output(
    rt: Runtime, *, actor: Principal, request: Listing, output_cap: int
) -> list[RunView]:
    """The runs a listing selects, with their jobs and the start of their output."""
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        found, _total = runs.list_runs_with_jobs(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)
        return _with_output(conn, found, output_cap)


def run_with_output(rt: Runtime, *, actor: Principal, run_id: int, output_cap: int) -> RunView:
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        run = runs.get_run(conn, run_id, tenant_id=actor.tenant_id)
        return _with_output(conn, [(run, job_store.get_job(conn, run.job_id))], output_cap)[0]


def _with_output(conn: Connection, found: list[tuple[Run, Job]], cap: int) -> list[RunView]:
    # A finished run that wrote nothing has no chunks to look for.
    wrote = [run.id for run, _job in found if run.finished is None or run.output_bytes != 0]
    stdout = runs.output_heads(conn, wrote, stream="stdout", limit_bytes=cap)
    stderr = runs.output_heads(conn, wrote, stream="stderr", limit_bytes=cap)
    return [
        RunView(run, job, stdout.get(run.id, b""), stderr.get(run.id, b"")) for run, job in found
    ]


def job_with_output(rt: Runtime, *, actor: Principal, job_id: int, stdout_cap: int) -> JobView:
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        return _job_views(conn, [job], stdout_cap)[0]


def device_jobs(
    rt: Runtime, *, actor: Principal, device_id: int, limit: int, stdout_cap: int
) -> list[JobView]:
    """The newest `limit` jobs run against a device (newest first); an unknown device is
    NotFound."""
    catalog.get_device(rt, actor=actor, device_id=device_id)
    require(actor, Scope.JOBS_READ)
    wanted = Listing(
        filters=[
            filters.check_filter(filters.parse_filter(f"target_device_id={device_id}"), JOB_FIELDS)
        ],
        sort=filters.check_sort(filters.parse_sort("-created,-id"), JOB_FIELDS),
        page=PageRequest(page=1, limit=limit),
    )
    with rt.db.read() as conn:
        found, _total = job_store.list_jobs(conn, wanted, tenant_id=actor.tenant_id, pg=rt.pg)
        return _job_views(conn, found, stdout_cap)


def _job_views(conn: Connection, found: list[Job], stdout_cap: int) -> list[JobView]:
    job_ids = [job.id for job in found]
    latest = runs.latest_runs(conn, job_ids)
    run_ids = [run.id for run in latest.values()]
    stdout = runs.output_heads(conn, run_ids, stream="stdout", limit_bytes=stdout_cap)
    results = result_store.results_of_jobs(conn, job_ids)
    return [
        JobView(job, stdout[latest[job.id].id] if job.id in latest else b"", results[job.id])
        for job in found
    ]


def job_history(rt: Runtime, *, actor: Principal, job_id: int) -> tuple[Job, list[JobEvent]]:
    """A job and every status change it went through, oldest first."""
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        return job, job_events.list_events(conn, job_id)
