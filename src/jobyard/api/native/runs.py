"""`/api/v1/runs/`: the attempts of jobs, read-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import quick_read, runtime_of
from jobyard.api.native import present
from jobyard.api.native.answers import RunOut, one, page
from jobyard.api.openapi import AUTHENTICATED
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_RUN, RUN_FIELDS
from jobyard.services import runs

router = APIRouter(prefix="/api/v1/runs", tags=["runs"], responses=AUTHENTICATED)
Caller = Annotated[Principal, Depends(authenticate)]
RunListing = Annotated[Listing, Depends(params.listing_of(RUN_FIELDS))]


@router.get("/", response_model=page(RunOut))
async def list_runs(listing: RunListing, request: Request, who: Caller) -> Response:
    found, total = await run_in_threadpool(
        lambda: runs.list_runs(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.run(r) for r in found], total=total, request=listing.page)


@router.get("/{run_id}/", response_model=one(RunOut))
async def get_run(
    run_id: Annotated[str, params.id_in_path("run")], request: Request, who: Caller
) -> Response:
    target = params.object_id(run_id, NO_SUCH_RUN)
    rt = runtime_of(request)
    found = await quick_read(rt, lambda: runs.get_run(rt, actor=who, run_id=target))
    return render.one(present.run(found))
