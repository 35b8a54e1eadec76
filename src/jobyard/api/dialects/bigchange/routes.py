"""BigChange's `/v1/jobs` routes: parse the vendor's request, call a service, render."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from jobyard import errors
from jobyard.api import bodies, params, render
from jobyard.api.auth import authenticate
from jobyard.api.dialects import http
from jobyard.api.dialects.bigchange.bodies import JobCancel, JobResult, JobStart, NewJob, bad
from jobyard.api.dialects.bigchange.present import page, present_event, present_job
from jobyard.api.dialects.bigchange.queries import descending, job_listing, page_request
from jobyard.domain.outcomes import Outcome, parse_status
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_JOB
from jobyard.services import jobs, outcomes, read_models
from jobyard.services.runtime import utcnow

PREFIX = "/v1/jobs"
router = APIRouter(prefix=PREFIX)


async def caller(request: Request) -> Principal:
    """`Customer-Id` (required, a number) and a Bearer token; then the shared authentication."""
    http.required_customer(request)
    http.bearer_token(request)
    return await authenticate(request)


@router.get("")
async def list_jobs(request: Request, who: Principal = Depends(caller)) -> Response:
    now = utcnow()
    wanted = job_listing(request, now)
    found, _total = await http.call(request, jobs.list_jobs, actor=who, request=wanted)
    return page([present_job(j, now) for j in found], wanted.page)


@router.post("")
async def create_job(request: Request, who: Principal = Depends(caller)) -> Response:
    """`typeId` names the package; description, reference and contactId go in the context."""
    body = NewJob.parse(await bodies.read_json(request))
    context: dict[str, Any] = {
        name: value
        for name, value in (
            ("description", body.description),
            ("reference", body.reference),
            ("contactId", body.contact_id),
        )
        if value is not None
    }
    launch = jobs.LaunchRequest(package_id=body.type_id, run_at=body.planned_start, context=context)
    try:
        job = await http.call(request, jobs.launch_job, actor=who, request=launch)
    except errors.NotFound as exc:  # a body reference: the request is unprocessable, not absent
        raise errors.RuleViolation(
            f"no job type {body.type_id}: {exc.message}", field="typeId"
        ) from None
    return render.json_response({"id": job.id}, int(HTTPStatus.CREATED))


@router.get("/{job_id}")
async def get_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await http.call(request, jobs.get_job, actor=who, job_id=target)
    return render.json_response(present_job(found, utcnow()))


@router.put("/{job_id}/result")
async def set_result(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    """The seed's endpoint: the job must be started; `result` must match one of its type's
    options exactly (the service checks both: 422)."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    body = JobResult.parse(await bodies.read_json(request))
    outcome = Outcome(parse_status(body.status), body.result or "")
    await http.call(request, outcomes.set_outcome, actor=who, job_id=target, outcome=outcome)
    return render.no_content()


@router.put("/{job_id}/start")
async def start_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    JobStart.parse(await bodies.read_json(request), optional=True)
    await http.call(request, outcomes.start_job, actor=who, job_id=target)
    return render.no_content()


@router.put("/{job_id}/cancel")
async def cancel_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    body = JobCancel.parse(await bodies.read_json(request), optional=True)
    # BigChange cancels only jobs not yet started ("Cancel a job": 422 once started).
    await http.call(
        request,
        jobs.cancel_job,
        actor=who,
        job_id=target,
        only_pending=True,
        reason=body.reason or "",
    )
    return render.no_content()


@router.get("/{job_id}/status/history")
async def status_history(
    job_id: str, request: Request, who: Principal = Depends(caller)
) -> Response:
    """Every status change of the job, oldest first unless `direction=descending`."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    sort_by = request.query_params.get("sortBy") or "createdAt"
    if sort_by != "createdAt":
        raise bad("sortBy", "createdAt", sort_by)
    newest_first = descending(request)
    wanted = page_request(request)
    job, events = await http.call(request, read_models.job_history, actor=who, job_id=target)
    ordered = sorted(events, key=lambda e: (e.at, e.id), reverse=newest_first)
    chosen = ordered[wanted.offset : wanted.offset + (wanted.limit or len(ordered))]
    return page([present_event(e, job) for e in chosen], wanted)
