"""`/api/v1/jobs/`: CDRouter's jobs resource, plus cancel, log and events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import bodies, idempotent, params, render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import quick_read, runtime_of
from jobyard.api.group_commit import launch_queue_of
from jobyard.api.native import follow, inputs, present, schemas
from jobyard.api.native.answers import EventOut, InterfaceOut, JobOut, LogOut, ResultOut, one, page
from jobyard.api.openapi import AUTHENTICATED, NO_CONTENT, WRITING, request_body
from jobyard.domain.filters import FieldKind
from jobyard.domain.idempotency import HEADER, Idempotency
from jobyard.domain.listing import Listing
from jobyard.domain.outcomes import Outcome, parse_status
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import JOB_FIELDS, NO_SUCH_JOB, PACKAGE_FIELDS
from jobyard.errors import NotFound, ValidationFailed
from jobyard.services import jobs, outcomes, results, runs

router = APIRouter(
    prefix="/api/v1/jobs", tags=["jobs"], route_class=ReadsJsonBody, responses=AUTHENTICATED
)
JobId = Annotated[str, params.id_in_path("job")]
Caller = Annotated[Principal, Depends(authenticate)]
JobListing = Annotated[Listing, Depends(params.listing_of(JOB_FIELDS))]


@router.get("/", response_model=page(JobOut))
async def list_jobs(listing: JobListing, who: Caller, request: Request) -> Response:
    found, total = await run_in_threadpool(
        lambda: jobs.list_jobs(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.job(j) for j in found], total=total, request=listing.page)


# The launch is the hottest route: the query parameters only its rarer operations use are
# read from the query by hand, as what FastAPI does for each declared parameter on every
# request (about 15 µs each) was a tenth of a single launch's cost. They are declared here.
LAUNCH_QUERY = [
    params.read_by_hand("bulk", "`launch` (also `edit`, as CDRouter's docs spell it) or `delete`"),
    params.read_by_hand("process", "`interfaces`: the interfaces a launch uses"),
    params.read_by_hand(
        "filter",
        "With `bulk`: which packages to launch (package fields) or which jobs to delete "
        "(job fields); the grammar of list filters",
        many=True,
    ),
    params.read_by_hand("type", "How filters combine: `inter` (all, the default) or `union`"),
    params.read_by_hand("all", "A bulk operation over every package or job"),
]


@router.post(
    "/",
    response_model=one(JobOut | list[JobOut] | list[InterfaceOut]),
    responses=WRITING | NO_CONTENT,
    # The hot path reads its body by hand (`bodies.read_json`), and one operation takes three
    # bodies by its query; this declares them.
    openapi_extra=request_body(schemas.JobLaunchIn, schemas.BulkLaunchIn, schemas.BulkDeleteIn)
    | {"parameters": [*LAUNCH_QUERY, idempotent.DECLARED]},
)
async def launch(request: Request, who: Caller) -> Response:
    """Launch one job (`JobLaunchIn`); with `bulk=launch` many (`BulkLaunchIn`: a jobs list,
    or `fields` for every package a `filter` or `all=true` selects); with `bulk=delete` delete
    many (`BulkDeleteIn`, or a job `filter` / `all=true`); with `process=interfaces` the
    interfaces a launch would use."""
    query = request.query_params
    bulk, process = query.get("bulk"), query.get("process")
    if bulk is not None and process is not None:
        raise ValidationFailed("use bulk or process, not both")
    if bulk is not None:
        everything = params.flag_value(query.get("all"), "all")
        chosen = BulkQuery(query.getlist("filter"), query.get("type"), everything)
        return await _bulk(request, bulk, who, chosen)
    if process is not None:
        if process != "interfaces":
            raise ValidationFailed(f"invalid process {process!r}: expected interfaces")
        return await _interfaces(request, who)
    data = await bodies.read_json(request, empty={})
    keyed = idempotent.requested(request, "launch", data)
    launch = inputs.launch_request(bodies.validate(schemas.JobLaunchIn, data))
    if keyed is not None:
        return await _launch_keyed(request, who, keyed, lambda _conn: [launch], single=True)
    job = await launch_queue_of(request).launch(who, launch)
    return render.one(present.job(job))


async def _launch_keyed(
    request: Request, who: Principal, keyed: Idempotency, plan: jobs.Planned, *, single: bool
) -> Response:
    """A launch with an Idempotency-Key: once per key (the service says how), not through
    the group commit of the single launches without one."""
    rt = runtime_of(request)
    answer = await run_in_threadpool(
        lambda: jobs.launch_keyed(rt, actor=who, idempotency=keyed, plan=plan)
    )
    if not single:
        return idempotent.marked(render.one(present.jobs(answer.jobs)), answer.replayed)
    if not answer.jobs:
        raise NotFound(f"{NO_SUCH_JOB}: the job this {HEADER} launched has been deleted")
    return idempotent.marked(render.one(present.job(answer.jobs[0])), answer.replayed)


async def _interfaces(request: Request, who: Principal) -> Response:
    body = await bodies.parse(request, schemas.JobLaunchIn)
    found = await run_in_threadpool(
        lambda: jobs.job_interfaces(
            runtime_of(request), actor=who, request=inputs.launch_request(body)
        )
    )
    return render.one([present.interface(i) for i in found])


@dataclass(frozen=True)
class BulkQuery:
    """What a bulk operation's query selects: filters (and how they combine), or all."""

    filter_texts: list[str]
    combine: str | None
    everything: bool

    def selection(self, kinds: Mapping[str, FieldKind]) -> Listing | None:
        return params.selection(self.filter_texts, self.combine, kinds)


async def _bulk(request: Request, bulk: str, who: Principal, query: BulkQuery) -> Response:
    # The CDRouter docs show `bulk=edit` under "bulk launch": a documentation slip.
    if bulk in {"launch", "edit"}:
        return await _bulk_launch(request, who, query)
    if bulk == "delete":
        return await _bulk_delete(request, who, query)
    raise ValidationFailed(f"invalid bulk {bulk!r}: expected launch or delete")


async def _bulk_launch(request: Request, who: Principal, query: BulkQuery) -> Response:
    data = await bodies.read_json(request, empty={}, bulk=True)
    keyed = idempotent.requested(request, "launch", data)
    body, requests = inputs.bulk_launch(data)
    everything = query.everything
    selection = query.selection(PACKAGE_FIELDS)
    rt = runtime_of(request)
    if body.jobs is not None:
        if selection is not None or everything:
            raise ValidationFailed("give either a jobs list or a package filter / all, not both")
        if keyed is not None:
            return await _launch_keyed(request, who, keyed, lambda _conn: requests, single=False)
        launched = await run_in_threadpool(
            lambda: jobs.launch_jobs(rt, actor=who, requests=requests)
        )
    elif selection is not None or everything:
        fields = body.fields or schemas.JobLaunchIn()
        template = inputs.launch_request(fields, package_required=False)
        if keyed is not None:
            plan = jobs.selected_packages(selection, template, tenant_id=who.tenant_id, pg=rt.pg)
            return await _launch_keyed(request, who, keyed, plan, single=False)
        launched = await run_in_threadpool(
            lambda: jobs.launch_for_packages(rt, actor=who, selection=selection, template=template)
        )
    else:
        raise ValidationFailed("bulk launch needs a jobs list, a package filter or all=true")
    return render.one(present.jobs(launched))


async def _bulk_delete(request: Request, who: Principal, query: BulkQuery) -> Response:
    body = bodies.validate(schemas.BulkDeleteIn, await bodies.read_json(request, empty={}))
    everything = query.everything
    selection = query.selection(JOB_FIELDS)
    rt = runtime_of(request)
    if body.jobs is not None:
        ids = [params.reference_id(item.id, "id") or 0 for item in body.jobs]
        await run_in_threadpool(lambda: jobs.delete_jobs(rt, actor=who, job_ids=ids))
    elif selection is not None or everything:
        chosen = selection or params.listing(request.query_params, JOB_FIELDS)
        await run_in_threadpool(lambda: jobs.delete_jobs(rt, actor=who, selection=chosen))
    else:
        raise ValidationFailed("bulk delete needs a jobs list, a filter or all=true")
    return render.no_content()


@router.get("/{job_id}/", response_model=one(JobOut))
async def get_job(job_id: JobId, who: Caller, request: Request) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    rt = runtime_of(request)
    found = await quick_read(rt, lambda: jobs.get_job(rt, actor=who, job_id=target))
    return render.one(present.job(found))


@router.patch("/{job_id}/", response_model=one(JobOut), responses=WRITING)
async def edit_job(
    job_id: JobId, body: schemas.JobEditIn, who: Caller, request: Request
) -> Response:
    """Change a job that has not started."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    edit = inputs.job_edit(body)
    found = await run_in_threadpool(
        lambda: jobs.edit_job(runtime_of(request), actor=who, job_id=target, edit=edit)
    )
    return render.one(present.job(found))


@router.delete("/{job_id}/", status_code=204, responses=WRITING)
async def delete_job(job_id: JobId, who: Caller, request: Request) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    await run_in_threadpool(lambda: jobs.delete_job(runtime_of(request), actor=who, job_id=target))
    return render.no_content()


@router.post("/{job_id}/relaunch/", response_model=one(JobOut), responses=WRITING)
async def relaunch_job(job_id: JobId, who: Caller, request: Request) -> Response:
    """A new job from an old one's parameters."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.relaunch_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))


@router.post("/{job_id}/cancel/", response_model=one(JobOut), responses=WRITING)
async def cancel_job(job_id: JobId, who: Caller, request: Request) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.cancel_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))


@router.get("/{job_id}/events/", response_model=one(list[EventOut]))
async def job_events(job_id: JobId, who: Caller, request: Request) -> Response:
    """The job's status changes, oldest first."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.list_job_events(runtime_of(request), actor=who, job_id=target)
    )
    return render.one([present.event(e) for e in found])


Offset = Annotated[str | None, Query(description="The byte to start from (default 0)")]
Attempt = Annotated[str | None, Query(description="Which attempt (default: the latest)")]
Stream = Annotated[
    str | None, Query(description="`stdout` or `stderr` alone (default: both, merged)")
]
Accept = Annotated[
    str | None,
    Header(
        description="`application/json` (default), `text/plain` (the raw bytes) or "
        "`text/event-stream` (follow live)"
    ),
]
LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume following after this event"),
]
LOG_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The output from `offset`, as `Accept` asks",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "text/event-stream": {
                "schema": {"type": "string"},
                "description": "Server-sent events: `attempt` as each attempt starts, "
                "its `output`, "
                "and one `end` with the final status and exit code (docs/api.md)",
            },
        },
        "headers": {
            "X-Next-Offset": {"description": "text/plain: where the next read starts"},
            "X-Complete": {"description": "text/plain: whether the output is all there"},
        },
    }
}


@router.get("/{job_id}/log/", response_model=one(LogOut), responses=LOG_ANSWERS)
async def job_log(
    job_id: JobId,
    who: Caller,
    request: Request,
    offset: Offset = None,
    attempt: Attempt = None,
    stream: Stream = None,
    accept: Accept = None,
    last_event_id: LastEventId = None,
) -> Response:
    """Output from `offset` (bytes); `Accept: text/plain` gives the raw bytes,
    `text/event-stream` follows the job live."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    start = params.integer(offset, "offset", default=0) or 0
    number = params.integer(attempt, "attempt", default=None)
    if "text/event-stream" in (accept or ""):
        return await follow.respond(
            request,
            who,
            target,
            offset=start,
            attempt=number,
            stream=stream or None,
            last_event_id=last_event_id,
        )
    piece = await run_in_threadpool(
        lambda: runs.read_log(
            runtime_of(request),
            actor=who,
            job_id=target,
            offset=start,
            attempt=number,
            stream=stream or None,
        )
    )
    if "text/plain" in (accept or ""):
        headers = {"X-Next-Offset": str(piece.next_offset), "X-Complete": str(piece.complete)}
        return Response(piece.content, media_type="text/plain", headers=headers)
    return render.one(present.log(piece))


@router.get("/{job_id}/results/", response_model=one(list[ResultOut]))
async def job_results(job_id: JobId, who: Caller, request: Request) -> Response:
    """Custom results, newest first."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: results.list_results(runtime_of(request), actor=who, job_id=target)
    )
    return render.one([present.result(r) for r in found])


ResultBody = Annotated[dict[str, Any], Body(description="Any JSON object")]


async def append_result(
    job_id: JobId, payload: ResultBody, who: Caller, request: Request
) -> Response:
    """Append any JSON object as a result."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    added = await run_in_threadpool(
        lambda: results.append_result(
            runtime_of(request), actor=who, job_id=target, payload=payload
        )
    )
    return render.one(present.result(added))


async def set_outcome(
    job_id: JobId, body: schemas.OutcomeIn, who: Caller, request: Request
) -> Response:
    """The final result of a started job, checked against its package's result options."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    outcome = Outcome(parse_status(body.status), body.result or "")
    found = await run_in_threadpool(
        lambda: outcomes.set_outcome(runtime_of(request), actor=who, job_id=target, outcome=outcome)
    )
    return render.one(present.job(found))


# CDRouter's client sends each with either method: one operation per method.
for _method in ("POST", "PATCH"):
    router.add_api_route(
        "/{job_id}/results/",
        append_result,
        methods=[_method],
        name=f"append_result_{_method.lower()}",
        response_model=one(ResultOut),
        responses=WRITING,
    )
for _method in ("PUT", "POST"):
    router.add_api_route(
        "/{job_id}/outcome/",
        set_outcome,
        methods=[_method],
        name=f"set_outcome_{_method.lower()}",
        response_model=one(JobOut),
        responses=WRITING,
    )


@router.post("/{job_id}/start/", response_model=one(JobOut), responses=WRITING)
async def start_job(job_id: JobId, who: Caller, request: Request) -> Response:
    """Start an external job (one no worker executes)."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: outcomes.start_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))
