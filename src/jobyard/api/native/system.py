"""`/api/v1/system/` and the health probes."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard import __version__
from jobyard.api import render
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.api.native.answers import HealthOut, HostnameOut, VersionOut, one
from jobyard.api.openapi import AUTHENTICATED, PUBLIC
from jobyard.domain.permissions import Principal, require_person
from jobyard.services.runtime import check_database

router = APIRouter(tags=["system"])
Caller = Annotated[Principal, Depends(authenticate)]
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database does not answer", "model": HealthOut}
}


@router.get("/api/v1/system/hostname/", response_model=one(HostnameOut), responses=AUTHENTICATED)
async def hostname(who: Caller) -> Response:
    require_person(who)
    return render.one({"hostname": socket.gethostname()})


@router.get("/api/v1/system/version/", response_model=one(VersionOut), responses=AUTHENTICATED)
async def version(who: Caller) -> Response:
    require_person(who)
    return render.one({"version": __version__})


@router.get("/healthz", response_model=HealthOut, openapi_extra=PUBLIC)
async def healthz() -> Response:
    return render.json_response({"status": "ok"})


@router.get("/readyz", response_model=HealthOut, responses=NOT_READY, openapi_extra=PUBLIC)
async def readyz(request: Request) -> Response:
    try:
        await run_in_threadpool(check_database, runtime_of(request))
    except Exception:
        return render.json_response({"status": "database unavailable"}, 503)
    return render.json_response({"status": "ready"})
