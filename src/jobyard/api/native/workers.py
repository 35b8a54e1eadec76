"""`/api/v1/workers/`: the worker fleet (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import params, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.api.native.answers import WorkerOut, one
from jobyard.api.openapi import AUTHENTICATED
from jobyard.api.render import rfc3339
from jobyard.domain.permissions import Principal
from jobyard.services import workers

router = APIRouter(prefix="/api/v1/workers", tags=["workers"], responses=AUTHENTICATED)
Everything = Annotated[
    str | None, Query(alias="all", description="`true` adds the workers that have stopped")
]


@router.get("/", response_model=one(list[WorkerOut]))
async def list_workers(
    request: Request, who: Annotated[Principal, Depends(authenticate)], shown: Everything = None
) -> Response:
    """Live workers (`?all=true` adds stopped ones) with their heartbeats and current runs."""
    everything = params.flag_value(shown, "all")
    found = await run_in_threadpool(
        lambda: workers.list_workers(runtime_of(request), actor=who, include_stopped=everything)
    )
    return render.one(
        [
            {
                "id": str(view.worker.id),
                "name": view.worker.name,
                "host": view.worker.host,
                "pid": view.worker.pid,
                "slots": view.worker.slots,
                "started": rfc3339(view.worker.started),
                "heartbeat": rfc3339(view.worker.heartbeat),
                "draining": view.worker.draining,
                "stopped": rfc3339(view.worker.stopped) if view.worker.stopped else None,
                "running_job_ids": [str(i) for i in view.running_job_ids],
            }
            for view in found
        ]
    )
