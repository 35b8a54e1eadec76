"""`/api/v1/schedules/`: packages launched on a cron expression or at an interval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import runtime_of
from jobyard.api.native import inputs, present, schemas
from jobyard.api.native.answers import FireOut, ScheduleOut, one, page
from jobyard.api.openapi import AUTHENTICATED, NO_CONTENT, WRITING
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NOT_FOUND_MESSAGES, SCHEDULE_FIELDS
from jobyard.services import schedules

router = APIRouter(
    prefix="/api/v1/schedules",
    tags=["schedules"],
    route_class=ReadsJsonBody,
    responses=AUTHENTICATED,
)
ScheduleId = Annotated[str, params.id_in_path("schedule")]
Caller = Annotated[Principal, Depends(authenticate)]
ScheduleListing = Annotated[Listing, Depends(params.listing_of(SCHEDULE_FIELDS))]
FirePage = Annotated[Listing, Depends(params.listing_of({}))]  # page and limit only
NO_SUCH_SCHEDULE = NOT_FOUND_MESSAGES["schedules"]


@router.get("/", response_model=page(ScheduleOut))
async def list_schedules(listing: ScheduleListing, who: Caller, request: Request) -> Response:
    found, total = await run_in_threadpool(
        lambda: schedules.list_schedules(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.schedule(s) for s in found], total=total, request=listing.page)


@router.post("/", response_model=one(ScheduleOut), responses=WRITING)
async def create_schedule(body: schemas.ScheduleIn, who: Caller, request: Request) -> Response:
    """A new schedule: `name`, `package_id`, and `cron` (with `timezone`) or `interval`."""
    values = inputs.schedule_values(body)
    created = await run_in_threadpool(
        lambda: schedules.create_schedule(runtime_of(request), actor=who, values=values)
    )
    return render.one(present.schedule(created))


@router.get("/{schedule_id}/", response_model=one(ScheduleOut))
async def get_schedule(schedule_id: ScheduleId, who: Caller, request: Request) -> Response:
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    found = await run_in_threadpool(
        lambda: schedules.get_schedule(runtime_of(request), actor=who, schedule_id=target)
    )
    return render.one(present.schedule(found))


@router.patch("/{schedule_id}/", response_model=one(ScheduleOut), responses=WRITING)
async def edit_schedule(
    schedule_id: ScheduleId, body: schemas.ScheduleIn, who: Caller, request: Request
) -> Response:
    """Change a schedule; a new timing, or a resume, counts from now."""
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    values = inputs.schedule_values(body)
    edited = await run_in_threadpool(
        lambda: schedules.edit_schedule(
            runtime_of(request), actor=who, schedule_id=target, values=values
        )
    )
    return render.one(present.schedule(edited))


@router.delete("/{schedule_id}/", status_code=204, responses=WRITING | NO_CONTENT)
async def delete_schedule(schedule_id: ScheduleId, who: Caller, request: Request) -> Response:
    """Delete a schedule; the jobs it launched stay."""
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    await run_in_threadpool(
        lambda: schedules.delete_schedule(runtime_of(request), actor=who, schedule_id=target)
    )
    return render.no_content()


@router.post("/{schedule_id}/pause/", response_model=one(ScheduleOut), responses=WRITING)
async def pause_schedule(schedule_id: ScheduleId, who: Caller, request: Request) -> Response:
    """Fire no more until resumed."""
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    found = await run_in_threadpool(
        lambda: schedules.pause_schedule(runtime_of(request), actor=who, schedule_id=target)
    )
    return render.one(present.schedule(found))


@router.post("/{schedule_id}/resume/", response_model=one(ScheduleOut), responses=WRITING)
async def resume_schedule(schedule_id: ScheduleId, who: Caller, request: Request) -> Response:
    """Fire again, from the next fire time after now (what was missed while paused is not)."""
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    found = await run_in_threadpool(
        lambda: schedules.resume_schedule(runtime_of(request), actor=who, schedule_id=target)
    )
    return render.one(present.schedule(found))


@router.get("/{schedule_id}/fires/", response_model=page(FireOut))
async def list_fires(
    schedule_id: ScheduleId, listing: FirePage, who: Caller, request: Request
) -> Response:
    """The schedule's fire times, newest first: the job each launched (with its status now),
    or why it launched none."""
    target = params.object_id(schedule_id, NO_SUCH_SCHEDULE)
    found, total = await run_in_threadpool(
        lambda: schedules.list_fires(
            runtime_of(request), actor=who, schedule_id=target, page=listing.page
        )
    )
    return render.page([present.fire(f) for f in found], total=total, request=listing.page)
