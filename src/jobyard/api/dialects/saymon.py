"""SAYMON's Node API (`/node/api/`): jobs as SAYMON shows them, over jobyard's services.

Mapping: a SAYMON *object* is a jobyard device, an *operation* is a package, and executing an
operation on an object launches the package with that device as the job's device override.

- `GET  /node/api/jobs/{id}`: the Job model (below).
- `PATCH /node/api/jobs/{id}/results`: append the JSON object body as a custom result; the
  answer is 200 with an empty body (SAYMON documents the empty body, not the status).
- `POST /node/api/objects/{obj}/operations/{op}/execute`: launch package `op` on device `obj`;
  an optional JSON object of strings becomes the job's testvars (SAYMON's input arguments);
  the answer is the new job's id as a JSON string.
- `GET  /node/api/objects/{obj}/jobs`: the Job models of jobs run against device `obj`,
  newest first; `[]` when there are none. The device must exist.

Job model: `id`, `operation_id` (package), `owner_id` (the device the job runs against,
"" when none), `owner_type` 1 (an object), `user_id`
(who launched it), `process_meta` null, `timestamp` (created, epoch ms), `description`
`{stdout, exitCode}` from the latest run (exitCode null while unknown) and `results`, the
custom results newest first as `{payload, by, timestamp}`.

Size guards (SAYMON has no paging): `description.stdout` holds at most the first
`STDOUT_CAP` bytes of the latest run's stdout (`LIST_STDOUT_CAP` per job in an object's job
list), and an object's job list holds at most its `MAX_OBJECT_JOBS` newest jobs.

Authentication is the shared one: HTTP Basic `login:password`, a bearer token, or an API token
as `?api-token=` (SAYMON's name) or `?token=`.

Errors are SAYMON's (restify's) `{"code": <Code>, "message": <text>}`, with the code strings
SAYMON documents where it documents them and restify's names otherwise:

- 400 `InvalidContent`: the body is not JSON, or not the JSON object the endpoint takes;
- 400 `BadRequest`: any other invalid request;
- 401 `InvalidCredentials`: HTTP Basic credentials were given but are wrong; the message is
  `Invalid login or password.`;
- 401 `Unauthorized`: no credentials, or an invalid token. The message is itself a JSON
  string, `{"errorCode":3,"message":"Not logged in."}` or the same with `Invalid API token.`
  (3 is the only errorCode SAYMON documents, so it is used for both);
- 403 `Forbidden`: a permission is missing; the message names it;
- 404 `ResourceNotFound`: an unknown id (a non-numeric id too) or an unknown path;
- 405 `MethodNotAllowed`, 409 `Conflict`, 413 `PayloadTooLarge`, 422 `UnprocessableEntity`,
  429 `TooManyRequests` (too many failed logins, with `Retry-After`), 500 `InternalServer`,
  503 `ServiceUnavailable` (the database out of reach just now, with `Retry-After`).

Every 401 carries `WWW-Authenticate: Basic`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import RootModel
from starlette.responses import Response
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from jobyard import errors
from jobyard.api import bodies, idempotent, params, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import quick_write, runtime_of
from jobyard.api.dialects import http
from jobyard.api.openapi import WHY, request_body
from jobyard.domain.models import JobOptions, Testvar
from jobyard.domain.paging import MAX_LIMIT
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import NO_SUCH_JOB, NOT_FOUND_MESSAGES
from jobyard.services import jobs, read_models, results
from jobyard.services.jobs import LaunchRequest
from jobyard.services.read_models import JobView

PREFIX = "/node/api"

OWNER_TYPE_OBJECT: Final = 1
# stdout is served whole in one JSON answer, so it is capped: the first MiB of the latest
# run's stdout for one job, and 64 KiB per job in a list of up to 1000 jobs (≤ ~64 MiB).
STDOUT_CAP = 1024 * 1024
LIST_STDOUT_CAP = 64 * 1024
MAX_OBJECT_JOBS = MAX_LIMIT
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_SUCH_DEVICE = NOT_FOUND_MESSAGES["devices"]
NO_SUCH_PACKAGE = NOT_FOUND_MESSAGES["packages"]

NOT_LOGGED_IN = "Not logged in."
BAD_API_KEY = "Invalid API token."
INVALID_CREDENTIALS = "Invalid login or password."
CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServer",
}


class InvalidContent(errors.ValidationFailed):
    """The request body is not the JSON this endpoint takes (SAYMON's `InvalidContent`)."""


# Shapes, as `/openapi.json` declares them ---------------------------------------------------


class SaymonError(TypedDict):
    """Every error (restify's shape)."""

    code: str
    message: str


class SaymonJobDescription(TypedDict):
    stdout: str
    exitCode: int | None


class SaymonJobResult(TypedDict):
    payload: dict[str, Any]
    by: str
    timestamp: int


class SaymonJob(TypedDict):
    id: str
    description: SaymonJobDescription
    operation_id: str
    owner_id: str
    owner_type: Literal[1]
    user_id: str
    process_meta: None
    timestamp: int
    results: list[SaymonJobResult]


class SaymonArguments(RootModel[dict[str, str]]):
    """An operation's input arguments (a JSON object of strings), the job's testvars."""


class SaymonResultIn(RootModel[dict[str, Any]]):
    """A custom result: any JSON object."""


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    why = WHY | {400: "`InvalidContent` (not the JSON object the endpoint takes) or `BadRequest`"}
    return {code: {"model": SaymonError, "description": why[code]} for code in codes}


router = APIRouter(
    prefix=PREFIX, tags=["dialect:saymon"], responses=_errors(400, 401, 403, 404, 429, 503)
)
WRITING = _errors(409, 413, 422)
APPENDED: dict[int | str, dict[str, Any]] = {200: {"description": "Appended; the body is empty"}}
LAUNCHED: dict[int | str, dict[str, Any]] = {200: {"description": "The new job's id"}}
JobId = Annotated[str, Path(description="The job's id")]
ObjectId = Annotated[str, Path(description="The object's id: a device")]
OperationId = Annotated[str, Path(description="The operation's id: a package")]


# Errors -----------------------------------------------------------------------------------


def _code(status: int) -> str:
    if status in CODES:
        return CODES[status]
    return http.status_phrase(status).replace(" ", "").replace("-", "")


def _unauthorized(request: Request) -> tuple[str, str]:
    """SAYMON's 401 by what the caller presented: Basic credentials, a token, or nothing."""
    scheme = request.headers.get("authorization", "").partition(" ")[0].lower()
    if scheme == "basic":
        return "InvalidCredentials", INVALID_CREDENTIALS
    presented = scheme == "bearer" or any(
        request.query_params.get(name) for name in ("api-token", "token")
    )
    text = BAD_API_KEY if presented else NOT_LOGGED_IN
    return "Unauthorized", json.dumps({"errorCode": 3, "message": text}, separators=(",", ":"))


def render_error(
    request: Request, status: int, message: str, exc: errors.JobyardError | None
) -> Response:
    """`{"code", "message"}` with SAYMON's code for the status (see the module docstring)."""
    code = _code(status)
    if status == HTTPStatus.UNAUTHORIZED:
        code, message = _unauthorized(request)
    elif isinstance(exc, InvalidContent):
        code = "InvalidContent"
    response = render.json_response({"code": code, "message": message}, status)
    return http.error_tail(response, exc, challenge='Basic realm="jobyard"')


# Presentation -----------------------------------------------------------------------------


def epoch_ms(value: datetime) -> int:
    """Epoch milliseconds, exactly (no float rounding)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def _id(value: int | None) -> str:
    return str(value) if value else ""


def _job_model(view: JobView) -> SaymonJob:
    """`owner_id` is the device the job runs against: its override, or its package's device
    at launch."""
    job = view.job
    return {
        "id": str(job.id),
        "description": {
            "stdout": view.stdout.decode("utf-8", errors="replace"),
            "exitCode": job.exit_code,
        },
        "operation_id": _id(job.package_id),
        "owner_id": _id(job.target_device_id),
        "owner_type": OWNER_TYPE_OBJECT,
        "user_id": _id(job.user_id),
        "process_meta": None,
        "timestamp": epoch_ms(job.created),
        "results": [
            {"payload": dict(r.payload), "by": _id(r.user_id), "timestamp": epoch_ms(r.at)}
            for r in view.results
        ],
    }


async def _json_body(request: Request) -> Any:
    """The body as JSON (None when empty); malformed JSON is `InvalidContent`."""
    try:
        return await bodies.read_json(request, empty=None)
    except errors.PayloadTooLarge:
        raise
    except errors.ValidationFailed as exc:
        raise InvalidContent(exc.message) from None


def _arguments(body: Any) -> tuple[Testvar, ...] | None:
    """SAYMON's input arguments (a JSON object of strings) as the job's testvars."""
    if body is None:
        return None
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise InvalidContent("input arguments are a JSON object of string values")
    return tuple(Testvar(name, value) for name, value in body.items()) or None


# Routes -----------------------------------------------------------------------------------


@router.get("/jobs/{job_id}", response_model=SaymonJob)
async def get_job(
    job_id: JobId, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    found = await http.call(
        request, read_models.job_with_output, actor=who, job_id=target, stdout_cap=STDOUT_CAP
    )
    return render.json_response(_job_model(found))


@router.patch(
    "/jobs/{job_id}/results",
    response_class=Response,
    responses=APPENDED | WRITING,
    # The body is read by hand (`_json_body`) so that its errors are SAYMON's.
    openapi_extra=request_body(SaymonResultIn, required=True),
)
async def add_result(
    job_id: JobId, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    target = params.object_id(job_id, NO_SUCH_JOB)
    payload = await _json_body(request)
    if not isinstance(payload, dict):
        raise InvalidContent("a job result is a JSON object")
    await http.call(request, results.append_result, actor=who, job_id=target, payload=payload)
    return Response(status_code=200)


@router.post(
    "/objects/{obj_id}/operations/{op_id}/execute",
    response_model=str,
    responses=LAUNCHED | WRITING,
    openapi_extra=request_body(SaymonArguments) | {"parameters": [idempotent.DECLARED]},
)
async def execute_operation(
    obj_id: ObjectId, op_id: OperationId, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    device_id = params.object_id(obj_id, NO_SUCH_DEVICE)
    package_id = params.object_id(op_id, NO_SUCH_PACKAGE)
    arguments = await _json_body(request)
    keyed = idempotent.requested(
        request, "saymon_execute", {"object": device_id, "operation": package_id, "args": arguments}
    )
    testvars = _arguments(arguments)
    launch = LaunchRequest(
        package_id=package_id, device_id=device_id, options=JobOptions(testvars=testvars)
    )
    rt = runtime_of(request)
    if keyed is not None:
        answer = await http.call(
            request, jobs.launch_keyed, actor=who, idempotency=keyed, plan=lambda _conn: [launch]
        )
        return idempotent.marked(render.json_response(_launched_id(answer)), answer.replayed)
    job = await quick_write(rt, lambda: jobs.launch_job(rt, actor=who, request=launch))
    return render.json_response(str(job.id))


def _launched_id(answer: jobs.KeyedLaunch) -> str:
    if not answer.jobs:
        raise errors.NotFound(f"{NO_SUCH_JOB}: the job this Idempotency-Key launched was deleted")
    return str(answer.jobs[0].id)


@router.get("/objects/{obj_id}/jobs", response_model=list[SaymonJob])
async def object_jobs(
    obj_id: ObjectId, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    device_id = params.object_id(obj_id, NO_SUCH_DEVICE)
    found = await http.call(
        request,
        read_models.device_jobs,
        actor=who,
        device_id=device_id,
        limit=MAX_OBJECT_JOBS,
        stdout_cap=LIST_STDOUT_CAP,
    )
    return render.json_response([_job_model(view) for view in found])
