"""`/metrics`: Prometheus's text format (see `services.metrics` for what it holds). It takes
the metrics token (`JOBYARD_METRICS_TOKEN`) or a system admin's as a bearer, or anyone with
`JOBYARD_METRICS_PUBLIC=true`: the figures name every customer's packages."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.api.openapi import problems
from jobyard.errors import Forbidden
from jobyard.services import metrics
from jobyard.settings import Settings

router = APIRouter(tags=["system"])
TEXT_FORMAT: dict[int | str, dict[str, Any]] = {
    200: {"content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}}}
}


@router.get(
    "/metrics",
    response_class=Response,
    responses=TEXT_FORMAT | problems(401, 403, 503),
    summary="Prometheus metrics",
)
async def prometheus_metrics(request: Request) -> Response:
    """This process's request and run metrics, and the database's job, queue and slot
    figures, in Prometheus's text format (docs/metrics.md)."""
    rt = runtime_of(request)
    if not _token_fits(rt.settings, request):
        caller = await authenticate(request)
        if not caller.is_system_admin:
            raise Forbidden("the metrics token or a system admin's token is needed")
    body = await run_in_threadpool(metrics.exposition, rt)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _token_fits(settings: Settings, request: Request) -> bool:
    if settings.metrics_public:
        return True
    expected = settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return bool(
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )
