"""`/api/v1/runs/`: the attempts of jobs, read-only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.api.native import present
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_RUN, RUN_FIELDS
from jobyard.services import runs

router = APIRouter(prefix="/api/v1/runs")


@router.get("/")
async def list_runs(request: Request, who: Principal = Depends(authenticate)) -> Response:
    listing = params.listing(request.query_params, RUN_FIELDS)
    found, total = await run_in_threadpool(
        lambda: runs.list_runs(runtime_of(request), actor=who, request=listing)
    )
    return render.page([present.run(r) for r in found], total=total, request=listing.page)


@router.get("/{run_id}/")
async def get_run(
    run_id: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(run_id, NO_SUCH_RUN)
    found = await run_in_threadpool(
        lambda: runs.get_run(runtime_of(request), actor=who, run_id=target)
    )
    return render.one(present.run(found))
