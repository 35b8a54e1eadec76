"""`/api/v1/retention/`: the acting customer's retention of finished jobs, and a dry run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import runtime_of
from jobyard.api.native import schemas
from jobyard.api.native.answers import RetentionOut, RetentionPreviewOut, one
from jobyard.api.openapi import AUTHENTICATED, WRITING
from jobyard.api.render import ref
from jobyard.domain.permissions import Principal
from jobyard.services import retention

router = APIRouter(
    prefix="/api/v1/retention",
    tags=["retention"],
    route_class=ReadsJsonBody,
    responses=AUTHENTICATED,
)
Caller = Annotated[Principal, Depends(authenticate)]


@router.get("/", response_model=one(RetentionOut))
async def get_retention(who: Caller, request: Request) -> Response:
    """The customer's retention (admins); a package's own values override it."""
    found = await run_in_threadpool(lambda: retention.get_retention(runtime_of(request), actor=who))
    return render.one(asdict(found))


@router.put("/", response_model=one(RetentionOut), responses=WRITING)
async def set_retention(body: schemas.RetentionIn, who: Caller, request: Request) -> Response:
    """Set every value of the customer's retention (one left out or null keeps for ever)."""
    values = body.model_dump()
    found = await run_in_threadpool(
        lambda: retention.set_retention(runtime_of(request), actor=who, values=values)
    )
    return render.one(asdict(found))


@router.get("/preview/", response_model=one(RetentionPreviewOut))
async def preview(who: Caller, request: Request) -> Response:
    """A dry run: what the background deletion would delete now, by package; nothing goes."""
    found = await run_in_threadpool(lambda: retention.preview(runtime_of(request), actor=who))
    packages = [p | {"package_id": ref(p["package_id"])} for p in found.packages]
    return render.one(
        {"jobs": found.jobs, "output_chunks": found.output_chunks, "packages": packages}
    )
