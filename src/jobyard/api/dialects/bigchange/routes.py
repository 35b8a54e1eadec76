"""BigChange's `/v1/jobs` routes: parse the vendor's request, call a service, render."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from jobyard import errors
from jobyard.api import bodies, idempotent, params, render
from jobyard.api.auth import authenticate
from jobyard.api.dialects import http
from jobyard.api.dialects.bigchange.answers import (
    BigChangeCreated,
    BigChangeJob,
    BigChangeJobPage,
    BigChangeStatusPage,
    problems,
)
from jobyard.api.dialects.bigchange.bodies import JobCancel, JobResult, JobStart, NewJob, bad
from jobyard.api.dialects.bigchange.present import page, present_event, present_job
from jobyard.api.dialects.bigchange.queries import (
    HistorySortBy,
    JobQuery,
    Paging,
    descending,
    job_listing,
    job_query,
    page_request,
    paging,
)
from jobyard.api.openapi import NO_CONTENT, request_body
from jobyard.domain.outcomes import Outcome, parse_status
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_JOB
from jobyard.services import jobs, outcomes, read_models
from jobyard.services.runtime import utcnow

PREFIX = "/v1/jobs"
router = APIRouter(
    prefix=PREFIX, tags=["dialect:bigchange"], responses=problems(400, 401, 403, 404, 503)
)
WRITING = problems(413, 422)
# `caller` checks the header itself, so that a missing one is BigChange's 400; declared here.
CUSTOMER_ID = {
    "name": "Customer-Id",
    "in": "header",
    "required": True,
    "description": "The customer to act for: the caller's own, or any for a system admin",
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
}
# Every operation: the header, and a Bearer token only.
DECLARED: dict[str, Any] = {"parameters": [CUSTOMER_ID], "security": [{"bearer": []}]}
JobId = Annotated[str, Path(description="The job's id: an int64 from 1")]


async def caller(request: Request) -> Principal:
    """`Customer-Id` (required, a number) and a Bearer token; then the shared authentication."""
    http.required_customer(request)
    http.bearer_token(request)
    return await authenticate(request)


@router.get("", response_model=BigChangeJobPage, openapi_extra=DECLARED)
async def list_jobs(
    request: Request,
    who: Principal = Depends(caller),
    query: JobQuery = Depends(job_query),
    given: Paging = Depends(paging),
) -> Response:
    now = utcnow()
    wanted = job_listing(query, given, now)
    found, _total = await http.call(request, jobs.list_jobs, actor=who, request=wanted)
    return page([present_job(j, now) for j in found], wanted.page)


@router.post(
    "",
    status_code=int(HTTPStatus.CREATED),
    response_model=BigChangeCreated,
    responses=WRITING,
    # Bodies are read by hand (`Body.parse`), so that their 400s are BigChange's.
    openapi_extra={
        "parameters": [CUSTOMER_ID, idempotent.DECLARED],
        "security": DECLARED["security"],
    }
    | request_body(NewJob, required=True),
)
async def create_job(request: Request, who: Principal = Depends(caller)) -> Response:
    """`typeId` names the package; description, reference and contactId go in the context."""
    data = await bodies.read_json(request)
    keyed = idempotent.requested(request, "bigchange_create", data)
    body = NewJob.parse(data)
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
        if keyed is None:
            job = await http.call(request, jobs.launch_job, actor=who, request=launch)
            return render.json_response({"id": job.id}, int(HTTPStatus.CREATED))
        answer = await http.call(
            request, jobs.launch_keyed, actor=who, idempotency=keyed, plan=lambda _conn: [launch]
        )
    except errors.NotFound as exc:  # a body reference: the request is unprocessable, not absent
        raise errors.RuleViolation(
            f"no job type {body.type_id}: {exc.message}", field="typeId"
        ) from None
    if not answer.jobs:
        raise errors.NotFound(f"{NO_SUCH_JOB}: the job this Idempotency-Key launched was deleted")
    created = render.json_response({"id": answer.jobs[0].id}, int(HTTPStatus.CREATED))
    return idempotent.marked(created, answer.replayed)


@router.get("/{job_id}", response_model=BigChangeJob, openapi_extra=DECLARED)
async def get_job(job_id: JobId, request: Request, who: Principal = Depends(caller)) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await http.read_by_key(request, jobs.get_job, actor=who, job_id=target)
    return render.json_response(present_job(found, utcnow()))


@router.put(
    "/{job_id}/result",
    status_code=int(HTTPStatus.NO_CONTENT),
    responses=NO_CONTENT | WRITING,
    openapi_extra=DECLARED | request_body(JobResult, required=True),
)
async def set_result(job_id: JobId, request: Request, who: Principal = Depends(caller)) -> Response:
    """The seed's endpoint: the job must be started; `result` must match one of its type's
    options exactly (the service checks both: 422)."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    body = JobResult.parse(await bodies.read_json(request))
    outcome = Outcome(parse_status(body.status), body.result or "")
    await http.call(request, outcomes.set_outcome, actor=who, job_id=target, outcome=outcome)
    return render.no_content()


@router.put(
    "/{job_id}/start",
    status_code=int(HTTPStatus.NO_CONTENT),
    responses=NO_CONTENT | WRITING,
    openapi_extra=DECLARED | request_body(JobStart, required=False),
)
async def start_job(job_id: JobId, request: Request, who: Principal = Depends(caller)) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    JobStart.parse(await bodies.read_json(request), optional=True)
    await http.call(request, outcomes.start_job, actor=who, job_id=target)
    return render.no_content()


@router.put(
    "/{job_id}/cancel",
    status_code=int(HTTPStatus.NO_CONTENT),
    responses=NO_CONTENT | WRITING,
    openapi_extra=DECLARED | request_body(JobCancel, required=False),
)
async def cancel_job(job_id: JobId, request: Request, who: Principal = Depends(caller)) -> Response:
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


@router.get("/{job_id}/status/history", response_model=BigChangeStatusPage, openapi_extra=DECLARED)
async def status_history(
    job_id: JobId,
    request: Request,
    who: Principal = Depends(caller),
    sort_by: HistorySortBy = None,
    given: Paging = Depends(paging),
) -> Response:
    """Every status change of the job, oldest first unless `direction=descending`."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    sort_by = sort_by or "createdAt"
    if sort_by != "createdAt":
        raise bad("sortBy", "createdAt", sort_by)
    newest_first = descending(given)
    wanted = page_request(given)
    job, events = await http.call(request, read_models.job_history, actor=who, job_id=target)
    ordered = sorted(events, key=lambda e: (e.at, e.id), reverse=newest_first)
    chosen = ordered[wanted.offset : wanted.offset + (wanted.limit or len(ordered))]
    return page([present_event(e, job) for e in chosen], wanted)
