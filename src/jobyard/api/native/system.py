"""`/api/v1/system/` and the health probes."""

from __future__ import annotations

import socket

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard import __version__
from jobyard.api import render
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.domain.permissions import Principal, require_person
from jobyard.services.runtime import check_database

router = APIRouter()


@router.get("/api/v1/system/hostname/")
async def hostname(who: Principal = Depends(authenticate)) -> Response:
    require_person(who)
    return render.one({"hostname": socket.gethostname()})


@router.get("/api/v1/system/version/")
async def version(who: Principal = Depends(authenticate)) -> Response:
    require_person(who)
    return render.one({"version": __version__})


@router.get("/healthz")
async def healthz() -> Response:
    return render.json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    try:
        await run_in_threadpool(check_database, runtime_of(request))
    except Exception:
        return render.json_response({"status": "database unavailable"}, 503)
    return render.json_response({"status": "ready"})
