"""`/api/v1/jobs/`: CDRouter's jobs resource, plus cancel, log and events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from jobyard.api import bodies, params, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import quick_read, quick_write, runtime_of
from jobyard.api.native import inputs, present, schemas
from jobyard.domain.outcomes import Outcome, parse_status
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import JOB_FIELDS, NO_SUCH_JOB, PACKAGE_FIELDS
from jobyard.errors import ValidationFailed
from jobyard.services import jobs, outcomes, results, runs

router = APIRouter(prefix="/api/v1/jobs")


@router.get("/")
async def list_jobs(request: Request, who: Principal = Depends(authenticate)) -> Response:
    listing = params.listing(request.query_params, JOB_FIELDS)
    found, total = await run_in_threadpool(
        lambda: jobs.list_jobs(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.job(j) for j in found], total=total, request=listing.page)


@router.post("/")
async def launch(request: Request, who: Principal = Depends(authenticate)) -> Response:
    """Launch one job, or with `?bulk=` / `?process=` one of the collection operations."""
    bulk = request.query_params.get("bulk")
    process = request.query_params.get("process")
    if bulk is not None and process is not None:
        raise ValidationFailed("use bulk or process, not both")
    if bulk is not None:
        return await _bulk(request, bulk, who)
    if process is not None:
        if process != "interfaces":
            raise ValidationFailed(f"invalid process {process!r}: expected interfaces")
        return await _interfaces(request, who)
    body = await bodies.parse(request, schemas.JobLaunchIn)
    launch = inputs.launch_request(body)
    rt = runtime_of(request)
    job = await quick_write(rt, lambda: jobs.launch_job(rt, actor=who, request=launch))
    return render.one(present.job(job))


async def _interfaces(request: Request, who: Principal) -> Response:
    body = await bodies.parse(request, schemas.JobLaunchIn)
    found = await run_in_threadpool(
        lambda: jobs.job_interfaces(
            runtime_of(request), actor=who, request=inputs.launch_request(body)
        )
    )
    return render.one([present.interface(i) for i in found])


async def _bulk(request: Request, bulk: str, who: Principal) -> Response:
    # The CDRouter docs show `bulk=edit` under "bulk launch": a documentation slip.
    if bulk in {"launch", "edit"}:
        return await _bulk_launch(request, who)
    if bulk == "delete":
        return await _bulk_delete(request, who)
    raise ValidationFailed(f"invalid bulk {bulk!r}: expected launch or delete")


async def _bulk_launch(request: Request, who: Principal) -> Response:
    body, requests = inputs.bulk_launch(await bodies.read_json(request, empty={}))
    everything = params.flag(request.query_params, "all")
    selection = params.selection(request.query_params, PACKAGE_FIELDS)
    rt = runtime_of(request)
    if body.jobs is not None:
        if selection is not None or everything:
            raise ValidationFailed("give either a jobs list or a package filter / all, not both")
        launched = await run_in_threadpool(
            lambda: jobs.launch_jobs(rt, actor=who, requests=requests)
        )
    elif selection is not None or everything:
        fields = body.fields or schemas.JobLaunchIn()
        template = inputs.launch_request(fields, package_required=False)
        launched = await run_in_threadpool(
            lambda: jobs.launch_for_packages(rt, actor=who, selection=selection, template=template)
        )
    else:
        raise ValidationFailed("bulk launch needs a jobs list, a package filter or all=true")
    return render.one(present.jobs(launched))


async def _bulk_delete(request: Request, who: Principal) -> Response:
    body = bodies.validate(schemas.BulkDeleteIn, await bodies.read_json(request, empty={}))
    everything = params.flag(request.query_params, "all")
    selection = params.selection(request.query_params, JOB_FIELDS)
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


@router.get("/{job_id}/")
async def get_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    rt = runtime_of(request)
    found = await quick_read(rt, lambda: jobs.get_job(rt, actor=who, job_id=target))
    return render.one(present.job(found))


@router.patch("/{job_id}/")
async def edit_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    edit = inputs.job_edit(await bodies.parse(request, schemas.JobEditIn))
    found = await run_in_threadpool(
        lambda: jobs.edit_job(runtime_of(request), actor=who, job_id=target, edit=edit)
    )
    return render.one(present.job(found))


@router.delete("/{job_id}/")
async def delete_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    await run_in_threadpool(lambda: jobs.delete_job(runtime_of(request), actor=who, job_id=target))
    return render.no_content()


@router.post("/{job_id}/relaunch/")
async def relaunch_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """A new job from an old one's parameters."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.relaunch_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))


@router.post("/{job_id}/cancel/")
async def cancel_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.cancel_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))


@router.get("/{job_id}/events/")
async def job_events(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: jobs.list_job_events(runtime_of(request), actor=who, job_id=target)
    )
    return render.one([present.event(e) for e in found])


@router.get("/{job_id}/log/")
async def job_log(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """Output from `offset` (bytes); `Accept: text/plain` gives the raw bytes."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    query = request.query_params
    offset = params.integer(query.get("offset"), "offset", default=0) or 0
    attempt = params.integer(query.get("attempt"), "attempt", default=None)
    piece = await run_in_threadpool(
        lambda: runs.read_log(
            runtime_of(request),
            actor=who,
            job_id=target,
            offset=offset,
            attempt=attempt,
            stream=query.get("stream") or None,
        )
    )
    if "text/event-stream" in request.headers.get("accept", ""):
        last_event = request.headers.get("last-event-id")
        resumed = params.integer(last_event, "Last-Event-ID", default=None)
        begin = offset if resumed is None else resumed
        return StreamingResponse(
            _follow(request, who, target, begin, attempt, query.get("stream") or None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    if "text/plain" in request.headers.get("accept", ""):
        headers = {"X-Next-Offset": str(piece.next_offset), "X-Complete": str(piece.complete)}
        return Response(piece.content, media_type="text/plain", headers=headers)
    return render.one(present.log(piece))


@router.get("/{job_id}/results/")
async def job_results(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """Custom results, newest first."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: results.list_results(runtime_of(request), actor=who, job_id=target)
    )
    return render.one([present.result(r) for r in found])


@router.api_route("/{job_id}/results/", methods=["POST", "PATCH"])
async def append_result(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """Append any JSON object as a result."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    payload = await bodies.read_json(request, empty=None)
    if not isinstance(payload, dict):
        raise ValidationFailed("a result is a JSON object")
    added = await run_in_threadpool(
        lambda: results.append_result(
            runtime_of(request), actor=who, job_id=target, payload=payload
        )
    )
    return render.one(present.result(added))


@router.api_route("/{job_id}/outcome/", methods=["PUT", "POST"])
async def set_outcome(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """The final result of a started job, checked against its package's result options."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    body = await bodies.parse(request, schemas.OutcomeIn)
    outcome = Outcome(parse_status(body.status), body.result or "")
    found = await run_in_threadpool(
        lambda: outcomes.set_outcome(runtime_of(request), actor=who, job_id=target, outcome=outcome)
    )
    return render.one(present.job(found))


@router.post("/{job_id}/start/")
async def start_job(
    job_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    """Start an external job (one no worker executes)."""
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await run_in_threadpool(
        lambda: outcomes.start_job(runtime_of(request), actor=who, job_id=target)
    )
    return render.one(present.job(found))


FOLLOW_POLL_SECONDS = 0.25
FOLLOW_KEEPALIVE_SECONDS = 15.0


async def _follow(
    request: Request,
    who: Principal,
    job_id: int,
    offset: int,
    attempt: int | None,
    stream: str | None,
) -> AsyncIterator[bytes]:
    """Server-sent events: `output` events (id = the next offset, for resuming with
    Last-Event-ID) as the job writes, then one `end` event when its run is over."""
    quiet = 0.0
    while not await request.is_disconnected():
        read = partial(
            runs.read_log,
            runtime_of(request),
            actor=who,
            job_id=job_id,
            offset=offset,
            attempt=attempt,
            stream=stream,
        )
        piece = await run_in_threadpool(read)
        if piece.content:
            data = json.dumps(
                {"stream": stream or "", "content": piece.content.decode("utf-8", "replace")}
            )
            yield f"event: output\nid: {piece.next_offset}\ndata: {data}\n\n".encode()
            offset, quiet = piece.next_offset, 0.0
            continue
        if piece.complete:
            yield f"event: end\nid: {offset}\ndata: {{}}\n\n".encode()
            return
        if quiet >= FOLLOW_KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
        quiet += FOLLOW_POLL_SECONDS
