"""`/metrics`: Prometheus's text format (see `services.metrics` for what it holds). It takes
the metrics token (`JOBYARD_METRICS_TOKEN`) or a system admin's as a bearer, or anyone with
`JOBYARD_METRICS_PUBLIC=true`: the figures name every customer's packages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api.auth import authenticate, bearer_token
from jobyard.api.calls import runtime_of
from jobyard.api.openapi import problems
from jobyard.domain.permissions import require_system_admin
from jobyard.services import metrics

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
    figures, in Prometheus's text format (docs/observability.md)."""
    rt = runtime_of(request)
    bearer = bearer_token(request.headers.get("authorization", ""))
    if not metrics.token_admits(rt.settings, bearer):
        require_system_admin(await authenticate(request), "the metrics (or bring their token)")
    body = await run_in_threadpool(metrics.exposition, rt)
    return Response(body, media_type=metrics.CONTENT_TYPE)
