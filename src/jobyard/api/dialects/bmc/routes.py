"""BMC's job run routes, its Rails headers and its error answer (see the package docstring)."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from jobyard import errors
from jobyard.api import params
from jobyard.api.auth import authenticate
from jobyard.api.dialects import http
from jobyard.api.dialects.bmc.answers import (
    LIST_ANSWERS,
    LIST_DECLARED,
    SHOW_ANSWERS,
    SHOW_DECLARED,
    BmcJobRun,
    failures,
)
from jobyard.api.dialects.bmc.filters import body_filters, query_filters
from jobyard.api.dialects.bmc.present import OUTPUT_CAP, ROOT, bmc_time, job_run
from jobyard.domain.filters import SortKey
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_RUN
from jobyard.errors import NotFound
from jobyard.services import read_models

PREFIX = "/v1/job_runs"

CACHE_CONTROL = "max-age=0, private, must-revalidate"
MAX_RUNS = 500
ALLOW = "GET, HEAD"
NOT_ALLOWED = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _start_clock(request: Request) -> None:
    request.state.bmc_started = time.perf_counter()


router = APIRouter(
    dependencies=[Depends(_start_clock)],
    tags=["dialect:bmc"],
    responses=failures(400, 403, 404, 406, 429, 503),
)
RunId = Annotated[
    str, Path(description="The job run's id, with an optional `.json` or `.xml` suffix")
]


def _stamp(request: Request, response: Response) -> Response:
    """Rails' headers on every answer."""
    started = getattr(request.state, "bmc_started", None)
    elapsed = time.perf_counter() - started if started is not None else 0.0
    response.headers["X-Request-Id"] = secrets.token_hex(16)
    response.headers["X-Runtime"] = f"{elapsed:.6f}"
    response.headers["X-UA-Compatible"] = "IE=Edge"
    return response


def _answer(request: Request, fmt: http.Format, data: object) -> Response:
    body = http.encode(data, fmt, ROOT, format_datetime=bmc_time)
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
    answer = http.tagged(request, body, media_type=http.MEDIA_TYPES[fmt], headers=headers)
    return _stamp(request, answer)


def render_error(
    request: Request, status: int, message: str, exc: errors.JobyardError | None
) -> Response:
    """BMC answers a missing or invalid token with 403; the body follows the asked format."""
    if status == 401:  # noqa: PLR2004
        status = 403
    fmt = http.requested_format(request)
    body = http.encode({"error": message}, fmt, "errors", format_datetime=bmc_time)
    response = Response(body, status_code=status, media_type=http.MEDIA_TYPES[fmt])
    response.headers["Cache-Control"] = "no-cache"
    return _stamp(request, http.error_tail(response, exc))


async def list_job_runs(request: Request, who: Principal = Depends(authenticate)) -> Response:
    fmt = http.checked_format(request)
    filters = query_filters(request) + await body_filters(request)
    listing = Listing(
        filters=filters, sort=[SortKey("id", descending=True)], page=PageRequest(1, MAX_RUNS)
    )
    found = await http.call(
        request, read_models.runs_with_output, actor=who, request=listing, output_cap=OUTPUT_CAP
    )
    if not found:
        raise NotFound("no job runs found")
    return _answer(request, fmt, [job_run(view) for view in reversed(found)])


async def show_job_run(
    ident: RunId, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    fmt = http.checked_format(request)
    run_id = params.object_id(ident.rsplit(".", 1)[0], NO_SUCH_RUN)
    found = await http.call(
        request, read_models.run_with_output, actor=who, run_id=run_id, output_cap=OUTPUT_CAP
    )
    return _answer(request, fmt, job_run(found))


async def not_allowed() -> Response:
    raise HTTPException(405, headers={"Allow": ALLOW})


async def no_such_resource() -> Response:
    raise NotFound("no such resource")


# Each path is an operation of its own in `/openapi.json`, so each has a name of its own.
COLLECTION = {
    PREFIX: "list_job_runs",
    PREFIX + "/": "list_job_runs_slash",
    PREFIX + ".{fmt}": "list_job_runs_in_format",
}
MEMBER = {PREFIX + "/{ident}": "show_job_run", PREFIX + "/{ident}/": "show_job_run_slash"}
ANY_METHOD = ["GET", "HEAD", *NOT_ALLOWED]
# `.{fmt}` is read by `http.checked_format` from the path itself; declared here.
FMT = {
    "name": "fmt",
    "in": "path",
    "required": True,
    "description": "`json` or `xml`; any other is 406",
    "schema": {"type": "string", "enum": ["json", "xml"]},
}

for _path, _name in COLLECTION.items():
    declared: dict[str, Any] = LIST_DECLARED
    if "{fmt}" in _path:
        declared = {**LIST_DECLARED, "parameters": [FMT, *LIST_DECLARED["parameters"]]}
    router.add_api_route(
        _path,
        list_job_runs,
        methods=["GET"],
        name=_name,
        response_model=list[BmcJobRun],
        responses=LIST_ANSWERS | failures(413),
        openapi_extra=declared,
    )
    router.add_api_route(_path, list_job_runs, methods=["HEAD"], include_in_schema=False)
for _path, _name in MEMBER.items():
    router.add_api_route(
        _path,
        show_job_run,
        methods=["GET"],
        name=_name,
        response_model=BmcJobRun,
        responses=SHOW_ANSWERS,
        openapi_extra=SHOW_DECLARED,
    )
    router.add_api_route(_path, show_job_run, methods=["HEAD"], include_in_schema=False)
for _path in [*COLLECTION, *MEMBER]:
    router.add_api_route(
        _path,
        not_allowed,
        methods=NOT_ALLOWED,
        dependencies=[Depends(authenticate)],
        include_in_schema=False,
    )
router.add_api_route(
    PREFIX + "/{rest:path}", no_such_resource, methods=ANY_METHOD, include_in_schema=False
)
