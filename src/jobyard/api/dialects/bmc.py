"""BMC Release Process Management: REST job runs, read-only, under `/v1/job_runs`.

A job run is one of our runs (an attempt of a job) shown with its job. Routes:

- `GET /v1/job_runs`, `/v1/job_runs.json`, `/v1/job_runs.xml`: every matching run (404 when
  none matches, as BMC answers);
- `GET /v1/job_runs/{id}`, `/v1/job_runs/{id}.json`, `/v1/job_runs/{id}.xml`: one run;
- POST, PUT, PATCH, DELETE and OPTIONS on both: 405 with `Allow: GET, HEAD`, after the token
  is checked (an invalid token is 403 first, as BMC lists it).

Choices where the seed and BMC's docs are silent, each the least surprising one:

- Format: a `.json`/`.xml` suffix, else a `format` query parameter (Rails honours both), else the
  `Accept` header (`application/xml` or `text/xml` -> XML, the highest `q` wins, the first listed
  on a tie); JSON otherwise. Any other suffix or `format` value is 406 (Rails' UnknownFormat).
- Authentication: the `token` parameter BMC documents, and anything else jobyard accepts
  (Bearer, Basic). A missing or invalid token is 403, never 401.
- Errors: `{"error": "<message>"}` in JSON, `<errors><error>message</error></errors>` in XML
  (Rails' `errors.to_xml`), in the format the request asked for. BMC does not document a body.
- Fields, in the sample's order: `automation_id` is the job's package; `created_at` and
  `started_at` are when the run began (the run is created as it starts); `updated_at` is when
  it finished, else when it began; `job_type` is `automation` for command packages and
  `notification` for external ones; `results_path` is the native log of that attempt;
  `status` is Running, Complete, Problem (failed, timed out or lost) or Cancelled; a pending
  job has no run and so is not listed. Times are ISO 8601 in UTC, whole seconds, `+00:00`.
- `stdout` and `stderr` hold at most the first `OUTPUT_CAP` bytes (64 KiB) of each stream,
  decoded as UTF-8 (bad bytes replaced); null when the stream is empty. The whole output is at
  `results_path`.
- `step` is the `step` object given in the job's `context` at launch: `aasm_state`, `id`,
  `name` and `request` (`aasm_state`, `id`, `name`) in that order (null when not given), then
  any other keys alphabetically; null when the context has no step object.
- The list has no paging (BMC has none): it holds the newest `MAX_RUNS` (500) matching runs, in
  id order.
- Filters: `currently_running`, `run_key`, `status`, `job_type`, `process_id`,
  `automation_id`, `user_id` and `step_id`, given as `filters[x]=v`, as plain `x=v`, or in a GET
  body: JSON `{"filters": {"x": v}}` or XML `<filters><x>v</x></filters>` (`text/xml` or
  `application/xml`, or a body starting with `<`; dashed names are read as underscores). All of
  them must hold. `status` takes the BMC names (any case), `job_type` automation or
  notification. A bad value is 400, and so is an unknown name inside `filters` (query or body),
  an XML root other than `<filters>` and a malformed body. Unknown plain parameters, and other
  members of a JSON body (Rails merges them into `params`), are ignored unless they name a
  filter, since they share their place with `token`, `format` and the like. An empty or null
  value is no filter. A GET body is capped by the server's body limit, an XML one at 64 KiB,
  and an XML body with a DOCTYPE (hence entities) is refused.
- Anything else under `/v1/job_runs/` is 404; HEAD answers like GET without a body; every
  answer carries `X-Request-Id` (random, 32 hex), `X-Runtime` (seconds) and `X-UA-Compatible`;
  successful ones an `ETag` (the quoted MD5 of the body, as Rails makes it), `Cache-Control:
  max-age=0, private, must-revalidate` and `Vary: Accept`, and `If-None-Match` with that tag
  (or `*`) gives an empty 304.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from jobyard import errors, jsontext
from jobyard.api import bodies, params, xml
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.domain.filters import Filter, Op, SortKey, check_filter
from jobyard.domain.listing import Listing
from jobyard.domain.models import Job, PackageKind, Run
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal
from jobyard.domain.statuses import RunStatus
from jobyard.domain.vocabulary import NO_SUCH_RUN, RUN_FIELDS
from jobyard.errors import NotFound, ValidationFailed
from jobyard.services import runs
from jobyard.services.runtime import Runtime

PREFIX = "/v1/job_runs"

JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "application/xml;charset=utf-8"
CACHE_CONTROL = "max-age=0, private, must-revalidate"
ROOT = "job-run"
OUTPUT_CAP = 64 * 1024
MAX_RUNS = 500
ALLOW = "GET, HEAD"
NOT_ALLOWED = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

STATUS_NAMES: dict[RunStatus, str] = {
    RunStatus.RUNNING: "Running",
    RunStatus.COMPLETED: "Complete",
    RunStatus.FAILED: "Problem",
    RunStatus.TIMED_OUT: "Problem",
    RunStatus.LOST: "Problem",
    RunStatus.CANCELLED: "Cancelled",
}
JOB_TYPES: dict[PackageKind, str] = {
    PackageKind.COMMAND: "automation",
    PackageKind.EXTERNAL: "notification",
}
STEP_KEYS = ("aasm_state", "id", "name")


class Format(StrEnum):
    JSON = "json"
    XML = "xml"


ACCEPTED_TYPES = {
    "application/json": Format.JSON,
    "text/json": Format.JSON,
    "application/xml": Format.XML,
    "text/xml": Format.XML,
    "application/*": Format.JSON,
    "*/*": Format.JSON,
}


async def _start_clock(request: Request) -> None:
    request.state.bmc_started = time.perf_counter()


router = APIRouter(dependencies=[Depends(_start_clock)])


# Formats --------------------------------------------------------------------------------


def _explicit_format(request: Request) -> str | None:
    """The format named by the last path element's suffix, else by `?format=`."""
    last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if "." in last:
        return last.rsplit(".", 1)[1].lower()
    named = request.query_params.get("format")
    return named.lower() if named else None


def _q(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _accepted_format(header: str) -> Format:
    best: tuple[float, Format] = (0.0, Format.JSON)
    for item in header.split(","):
        media, *parameters = item.split(";")
        found = ACCEPTED_TYPES.get(media.strip().lower())
        quality = _q(parameters)
        if found is not None and quality > best[0]:
            best = (quality, found)
    return best[1]


def requested_format(request: Request) -> Format:
    """What the answer is written in; an unknown explicit format falls back to `Accept`."""
    explicit = _explicit_format(request)
    if explicit in {Format.JSON.value, Format.XML.value}:
        return Format(explicit)
    return _accepted_format(request.headers.get("accept", ""))


def _check_format(request: Request) -> Format:
    explicit = _explicit_format(request)
    if explicit is not None and explicit not in {Format.JSON.value, Format.XML.value}:
        raise HTTPException(406, f'unsupported format "{explicit[:20]}": use json or xml')
    return requested_format(request)


# Answers --------------------------------------------------------------------------------


def bmc_time(value: datetime) -> str:
    """ISO 8601, whole seconds, with its offset (UTC here): `2012-09-04T19:34:44+00:00`."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return bmc_time(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _encode(data: Any, fmt: Format, root: str) -> bytes:
    """The answer's body; a stored value of any depth or shape renders (no recursion)."""
    if fmt is Format.XML:
        return xml.to_xml(data, root, format_datetime=bmc_time).encode("utf-8")
    return jsontext.dumps_bytes(data, default=_json_default)


def _stamp(request: Request, response: Response) -> Response:
    """Rails' headers on every answer."""
    started = getattr(request.state, "bmc_started", None)
    elapsed = time.perf_counter() - started if started is not None else 0.0
    response.headers["X-Request-Id"] = secrets.token_hex(16)
    response.headers["X-Runtime"] = f"{elapsed:.6f}"
    response.headers["X-UA-Compatible"] = "IE=Edge"
    return response


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _answer(request: Request, fmt: Format, data: Any) -> Response:
    body = _encode(data, fmt, ROOT)
    etag = '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return _stamp(request, Response(status_code=304, headers=headers))
    media_type = XML_TYPE if fmt is Format.XML else JSON_TYPE
    return _stamp(request, Response(body, media_type=media_type, headers=headers))


def render_error(
    request: Request, status: int, message: str, exc: errors.JobyardError | None
) -> Response:
    """BMC answers a missing or invalid token with 403; the body follows the asked format."""
    if status == 401:  # noqa: PLR2004
        status = 403
    fmt = requested_format(request)
    body = _encode({"error": message}, fmt, "errors")
    media_type = XML_TYPE if fmt is Format.XML else JSON_TYPE
    response = Response(body, status_code=status, media_type=media_type)
    response.headers["Cache-Control"] = "no-cache"
    if isinstance(exc, errors.TryLater):
        response.headers["Retry-After"] = str(exc.retry_after)
    return _stamp(request, response)


# Presenting -----------------------------------------------------------------------------


def _ordered(value: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The known keys first, in order (null when missing), then the others alphabetically."""
    out = {key: value.get(key) for key in known}
    out |= {key: value[key] for key in sorted(value) if key not in out}
    return out


def _step(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    step = _ordered(value, (*STEP_KEYS, "request"))
    request = step["request"]
    step["request"] = _ordered(request, STEP_KEYS) if isinstance(request, Mapping) else None
    return step


def results_path(run: Run) -> str:
    return f"/api/v1/jobs/{run.job_id}/log/?attempt={run.attempt}"


def job_run(run: Run, job: Job, *, stdout: str | None, stderr: str | None) -> dict[str, Any]:
    """A job run as BMC shows it, in the sample's key order (datetimes left to the writer)."""
    return {
        "automation_id": job.package_id,
        "created_at": run.started,
        "finished_at": run.finished,
        "id": run.id,
        "job_type": JOB_TYPES[job.kind],
        "process_id": run.process_id,
        "results_path": results_path(run),
        "run_key": run.run_key,
        "started_at": run.started,
        "status": STATUS_NAMES[run.status],
        "stderr": stderr,
        "stdout": stdout,
        "updated_at": run.finished or run.started,
        "step": _step(job.context.get("step")),
    }


def _stream(rt: Runtime, who: Principal, run: Run, stream: str) -> str | None:
    try:
        piece = runs.read_log(
            rt,
            actor=who,
            job_id=run.job_id,
            attempt=run.attempt,
            stream=stream,
            limit_bytes=OUTPUT_CAP,
        )
    except NotFound:  # deleted since it was listed
        return None
    # An incomplete character cut off by the cap is dropped, not replaced.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(piece.content[:OUTPUT_CAP])
    return text or None


def _present(rt: Runtime, who: Principal, run: Run, job: Job) -> dict[str, Any]:
    if run.finished is not None and run.output_bytes == 0:
        return job_run(run, job, stdout=None, stderr=None)
    return job_run(
        run,
        job,
        stdout=_stream(rt, who, run, "stdout"),
        stderr=_stream(rt, who, run, "stderr"),
    )


def _load_list(rt: Runtime, who: Principal, listing: Listing) -> list[dict[str, Any]]:
    found, _total = runs.list_runs_with_jobs(rt, actor=who, request=listing)
    return [_present(rt, who, run, job) for run, job in reversed(found)]


def _load_one(rt: Runtime, who: Principal, run_id: int) -> dict[str, Any]:
    run, job = runs.get_run_with_job(rt, actor=who, run_id=run_id)
    return _present(rt, who, run, job)


# Filters --------------------------------------------------------------------------------


def _checked(name: str, f: Filter, expected: str) -> Filter:
    try:
        return check_filter(f, RUN_FIELDS)
    except ValidationFailed:
        raise ValidationFailed(
            f'invalid {name} "{str(f.value)[:100]}": expected {expected}', field=name
        ) from None


def _equal(field: str, expected: str) -> Callable[[str, str], Filter]:
    return lambda name, text: _checked(name, Filter(field, Op.EQ, text), expected)


def _run_statuses_regex(statuses: list[RunStatus]) -> str:
    return "^(" + "|".join(re.escape(s.value) for s in statuses) + ")$"


def _status(name: str, text: str) -> Filter:
    wanted = [s for s, shown in STATUS_NAMES.items() if shown.lower() == text.strip().lower()]
    if not wanted:
        choices = ", ".join(dict.fromkeys(STATUS_NAMES.values()))
        raise ValidationFailed(f'invalid {name} "{text[:100]}": expected {choices}', field=name)
    if len(wanted) == 1:
        return _checked(name, Filter("status", Op.EQ, wanted[0].value), "a status")
    return _checked(name, Filter("status", Op.MATCH, _run_statuses_regex(wanted)), "a status")


def _job_type(name: str, text: str) -> Filter:
    kinds = [k for k, shown in JOB_TYPES.items() if shown == text.strip().lower()]
    if not kinds:
        choices = " or ".join(JOB_TYPES.values())
        raise ValidationFailed(f'invalid {name} "{text[:100]}": expected {choices}', field=name)
    return _checked(name, Filter("kind", Op.EQ, kinds[0].value), "a job type")


INTEGER = "an integer"
FILTERS: dict[str, Callable[[str, str], Filter]] = {
    "currently_running": _equal("running", "true or false"),
    "run_key": _equal("run_key", INTEGER),
    "status": _status,
    "job_type": _job_type,
    "process_id": _equal("process_id", INTEGER),
    "automation_id": _equal("package_id", INTEGER),
    "user_id": _equal("user_id", INTEGER),
    "step_id": _equal("step_id", INTEGER),
}
_BRACKETED = re.compile(r"filters\[([^\[\]]*)\]")
XML_BODY_TYPES = {"application/xml", "text/xml"}


def _value_text(name: str, value: object) -> str | None:
    """A filter value as text; None (no filter) when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip() or None
    raise ValidationFailed(f"invalid {name}: expected a single value", field=name)


def _filter(name: str, value: object, *, strict: bool) -> Filter | None:
    make = FILTERS.get(name)
    if make is None:
        if strict:
            known = ", ".join(FILTERS)
            raise ValidationFailed(f'unknown filter "{name[:50]}": expected one of {known}')
        return None
    text = _value_text(name, value)
    return None if text is None else make(name, text)


def _query_filters(request: Request) -> list[Filter]:
    found: list[Filter | None] = []
    for key, value in request.query_params.multi_items():
        bracketed = _BRACKETED.fullmatch(key)
        if bracketed:
            found.append(_filter(bracketed[1], value, strict=True))
        elif key.startswith("filters"):
            raise ValidationFailed(f'invalid parameter "{key[:60]}": expected filters[name]')
        else:
            found.append(_filter(key, value, strict=False))
    return [f for f in found if f is not None]


def _filters_in(mapping: object, *, strict: bool) -> list[Filter]:
    if not isinstance(mapping, Mapping):
        raise ValidationFailed("invalid body: filters must be an object of name: value")
    found = [_filter(str(name), value, strict=strict) for name, value in mapping.items()]
    return [f for f in found if f is not None]


def _xml_body_filters(raw: bytes) -> list[Filter]:
    try:
        document = xml.from_xml(raw)
    except xml.XmlError as exc:
        raise ValidationFailed(f"invalid XML body: {exc}") from None
    value = document.get("filters")
    if value is None and "filters" not in document:
        raise ValidationFailed("invalid XML body: expected <filters>…</filters>")
    return _filters_in(value or {}, strict=True)


def _json_body_filters(raw: bytes) -> list[Filter]:
    """`{"filters": {…}}`; other members are parameters, as Rails merges a JSON body into
    `params`: a filter name is a plain filter, anything else is ignored."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationFailed('invalid JSON body: expected {"filters": {…}}') from None
    if not isinstance(data, dict):
        raise ValidationFailed('invalid JSON body: expected {"filters": {…}}')
    plain = {name: value for name, value in data.items() if name != "filters"}
    return _filters_in(data.get("filters") or {}, strict=True) + _filters_in(plain, strict=False)


async def _body_filters(request: Request) -> list[Filter]:
    """Filters sent in a GET body: XML by its content type (or a leading `<`), else JSON."""
    raw = await bodies.read_bytes(request)
    if not raw.strip():
        return []
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media in XML_BODY_TYPES or (media != "application/json" and raw.lstrip().startswith(b"<")):
        return _xml_body_filters(raw)
    return _json_body_filters(raw)


# Routes ---------------------------------------------------------------------------------


async def list_job_runs(request: Request, who: Principal = Depends(authenticate)) -> Response:
    fmt = _check_format(request)
    filters = _query_filters(request) + await _body_filters(request)
    listing = Listing(
        filters=filters, sort=[SortKey("id", descending=True)], page=PageRequest(1, MAX_RUNS)
    )
    found = await run_in_threadpool(_load_list, runtime_of(request), who, listing)
    if not found:
        raise NotFound("no job runs found")
    return _answer(request, fmt, found)


async def show_job_run(
    ident: str, request: Request, who: Principal = Depends(authenticate)
) -> Response:
    fmt = _check_format(request)
    run_id = params.object_id(ident.rsplit(".", 1)[0], NO_SUCH_RUN)
    found = await run_in_threadpool(_load_one, runtime_of(request), who, run_id)
    return _answer(request, fmt, found)


async def not_allowed() -> Response:
    raise HTTPException(405, headers={"Allow": ALLOW})


async def no_such_resource() -> Response:
    raise NotFound("no such resource")


COLLECTION = [PREFIX, PREFIX + "/", PREFIX + ".{fmt}"]
MEMBER = [PREFIX + "/{ident}", PREFIX + "/{ident}/"]
ANY_METHOD = ["GET", "HEAD", *NOT_ALLOWED]

for _path in COLLECTION:
    router.add_api_route(_path, list_job_runs, methods=["GET"])
    router.add_api_route(_path, list_job_runs, methods=["HEAD"], include_in_schema=False)
for _path in MEMBER:
    router.add_api_route(_path, show_job_run, methods=["GET"])
    router.add_api_route(_path, show_job_run, methods=["HEAD"], include_in_schema=False)
for _path in COLLECTION + MEMBER:
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
