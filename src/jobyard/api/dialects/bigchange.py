"""BigChange's REST API v1 jobs (`/v1/jobs`): a thin presenter over the job services.

The seed page (`PUT /v1/jobs/{jobId}/result`) comes first, then BigChange's public docs
(`vendors/vendor_apis.md` §3); where both are silent, the choice is written down here.

What maps to what
- A BigChange job is a job; its job type (`typeId`, `typeName`) is the job's package, whose
  `positive_results` / `negative_results` are BigChange's result options.
- `status` follows DESIGN §3: pending → `new` (`scheduled` while `run_at` is in the future),
  running → `started`, completed → `completedOk`, completed_with_issues, failed, timed_out and
  lost → `completedWithIssues`, cancelled → `cancelled`. BigChange's other statuses (`sent`,
  `onTheWay`, ...) have no counterpart here: a list filtered on them is empty.
- `plannedStartAt` is `run_at`, `actualStartAt`/`actualEndAt` the job's start and finish,
  `statusModifiedAt` the time of its current status (finish, start or creation), `result` the
  outcome's result. Times are ISO 8601 in UTC (`Z`).
- `description`, `reference` and `contactId` given to `POST /v1/jobs` are kept in the job's
  free-form `context` (no table of their own) and shown back; without them a job shows
  `description: ""`, `reference: null`, `contactId: null`.

Decisions where BigChange is silent or cannot be followed exactly
- Credentials: `Authorization: Bearer <token>` only (a jobyard API token stands in for
  BigChange's OAuth JWT); Basic and `?token=` are not accepted on this surface. BigChange
  documents no 401, yet a missing, malformed or unknown token is answered **401** with
  `WWW-Authenticate: Bearer`: 403 keeps its documented meaning, a known caller that may not do
  this (a missing `jobs:read`/`jobs:write` scope, another customer), so a client can tell
  "get a new token" from "ask for more rights".
- `Customer-Id` is required on every request and checked before the credentials: absent,
  blank, or not a number of at most 19 digits → 400. A caller may name only its own customer
  (403 otherwise); a system admin may name any existing one (404 for one that does not exist).
- Path ids are int64 ≥ 1; anything else (letters, 0, too large) names no job → **404**, as a
  request to BigChange's `{jobId:long}` route that does not match it would get.
- Errors are RFC 7807 `application/problem+json` with `type`, `title`, `status`, `detail` and
  `instance`; only 422 adds `errors` (property → messages). 400 is malformed input (JSON,
  types, an enum value, an empty `result`, paging); 422 a well-formed request that breaks a
  rule (job status, result options, unknown job type). Our 409s (a conflict with the job's
  state) are BigChange's 422s.
- Request bodies: unknown members are ignored (ASP.NET's default); known ones are type-checked.
  No `Content-Type` is enforced.
- `statusModifiedAt` (start, result), `comment` (start) and `reason` (cancel) are checked but
  not stored: the services record their own clock and reason for a status change.
- Cancel: BigChange answers 422 when the job is already started, suspended or completed
  ("Cancel a job", vendor docs), while our cancel service also stops a running job. So this
  dialect refuses to cancel a started job itself: that is BigChange's documented rule, not one
  of ours. The look and the cancel are separate calls (a job started in between would still be
  cancelled), and the look needs `jobs:read` as well as `jobs:write`; a pending-only cancel in
  the service would close both gaps.
- Lists: no mandatory filter (BigChange's live API answers an unfiltered `GET /v1/jobs` 422;
  here it lists everything, a page at a time); `pageNumber` 1…2147483, `pageSize` 1…1000
  (default 100); no total count. Filters: `status` (repeated or comma-separated), `typeId`
  (one value), `sortBy` (`id`, `createdAt`, `plannedStartAt`, `actualStartAt`, `actualEndAt`)
  and `direction` (`ascending`/`descending`). The listing has no OR between filters, so
  exactly one of `new`/`scheduled` together with other statuses, and several `typeId`s, are
  refused with 400 rather than answered wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard import errors
from jobyard.api import bodies, render
from jobyard.api.auth import authenticate
from jobyard.api.calls import runtime_of
from jobyard.domain.filters import Combine, Filter, Op, SortKey, check_filter, parse_datetime
from jobyard.domain.listing import Listing
from jobyard.domain.models import Job, JobEvent
from jobyard.domain.numbers import MAX_INT64, ascii_int
from jobyard.domain.outcomes import Outcome, parse_status
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal
from jobyard.domain.statuses import JobStatus
from jobyard.domain.vocabulary import JOB_FIELDS, NO_SUCH_JOB
from jobyard.services import jobs, outcomes
from jobyard.services.runtime import utcnow

PREFIX = "/v1/jobs"
router = APIRouter(prefix=PREFIX)

T = TypeVar("T")

MAX_ID = MAX_INT64
MAX_PAGE_NUMBER = 2_147_483  # BigChange's stated bound on every list
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_FILTER_VALUES = 50

# BigChange's JobStatus enum (REST v1; the alert-only lateStart/lateFinish/rescheduled are not
# shown through the API) and the native statuses each one stands for.
NEW, SCHEDULED = "new", "scheduled"
BIGCHANGE_STATUSES = (
    "new",
    "scheduled",
    "unscheduled",
    "sent",
    "read",
    "accepted",
    "refused",
    "onTheWay",
    "started",
    "suspended",
    "completedOk",
    "completedWithIssues",
    "cancelled",
)
STATUS_OF: Mapping[JobStatus, str] = {
    JobStatus.PENDING: NEW,
    JobStatus.RUNNING: "started",
    JobStatus.COMPLETED: "completedOk",
    JobStatus.COMPLETED_WITH_ISSUES: "completedWithIssues",
    JobStatus.FAILED: "completedWithIssues",
    JobStatus.TIMED_OUT: "completedWithIssues",
    JobStatus.LOST: "completedWithIssues",
    JobStatus.CANCELLED: "cancelled",
}
SORT_FIELDS = {
    "id": "id",
    "createdAt": "created",
    "plannedStartAt": "run_at",
    "actualStartAt": "started",
    "actualEndAt": "finished",
}
DIRECTIONS = {"ascending": False, "descending": True}


# Presentation ------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _pending_status(run_at: datetime, at: datetime) -> str:
    return SCHEDULED if run_at > at else NEW


def status_of(job: Job, now: datetime) -> str:
    """The job's BigChange status (DESIGN §3)."""
    if job.status is JobStatus.PENDING:
        return _pending_status(job.run_at, now)
    return STATUS_OF[job.status]


def _status_modified(job: Job) -> datetime:
    if job.status.terminal:
        return job.finished or job.updated
    if job.status is JobStatus.RUNNING:
        return job.started or job.updated
    return job.created


def _context_text(context: Mapping[str, Any], name: str) -> str | None:
    value = context.get(name)
    return value if isinstance(value, str) else None


def present_job(job: Job, now: datetime) -> dict[str, Any]:
    contact = job.context.get("contactId")
    return {
        "id": job.id,
        "reference": _context_text(job.context, "reference"),
        "typeId": job.package_id or None,
        "typeName": job.package_name,
        "contactId": contact
        if isinstance(contact, int) and not isinstance(contact, bool)
        else None,
        "description": _context_text(job.context, "description") or "",
        "status": status_of(job, now),
        "statusModifiedAt": _time(_status_modified(job)),
        "result": (job.outcome.result or None) if job.outcome is not None else None,
        "createdAt": _time(job.created),
        "plannedStartAt": _time(job.run_at),
        "actualStartAt": _time(job.started),
        "actualEndAt": _time(job.finished),
    }


def present_event(event: JobEvent, job: Job) -> dict[str, Any]:
    status = STATUS_OF[event.to_status]
    if event.to_status is JobStatus.PENDING:
        status = _pending_status(job.run_at, event.at)
    return {
        "id": event.id,
        "status": status,
        "createdAt": _time(event.at),
        "comment": event.reason or None,
    }


def _page(items: Sequence[Any], page: PageRequest) -> Response:
    return render.json_response(
        {
            "items": list(items),
            "pageNumber": page.page,
            "pageSize": page.limit,
            "pageItemCount": len(items),
        }
    )


# Errors ------------------------------------------------------------------------------------

PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
    422: "https://tools.ietf.org/html/rfc9110#section-15.5.21",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
}
UNPROCESSABLE = 422
VALIDATION_TITLE = "One or more validation errors occurred."  # ASP.NET's, as BigChange sends


def _error_field(exc: errors.JobyardError | None) -> str:
    """The property a 422 is about: the rule's field, else the job's status for a conflict."""
    field = getattr(exc, "field", "") or ""
    if field:
        return str(field)
    return "status" if isinstance(exc, errors.Conflict) else "job"


def render_error(
    request: Request, status: int, message: str, exc: errors.JobyardError | None
) -> Response:
    """RFC 7807 problem details; `errors` (property → messages) on 422 only."""
    if isinstance(exc, errors.Conflict):  # a clash with the job's state: BigChange's 422
        status = UNPROCESSABLE
    body: dict[str, Any] = {
        "type": PROBLEM_TYPES.get(status, "about:blank"),
        "title": VALIDATION_TITLE if status == UNPROCESSABLE else _phrase(status),
        "status": status,
        "detail": message,
        "instance": request.url.path,
    }
    if status == UNPROCESSABLE:
        body["errors"] = {_error_field(exc): [message]}
    response = render.json_response(body, status, media_type=render.PROBLEM_TYPE)
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobyard"'
    if isinstance(exc, errors.TryLater):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# Request parsing ---------------------------------------------------------------------------


async def caller(request: Request) -> Principal:
    """`Customer-Id` (required, a number) and a Bearer token; then the shared authentication."""
    raw = request.headers.get("customer-id")
    if raw is None or not raw.strip():
        raise errors.ValidationFailed("the Customer-Id header is required", field="Customer-Id")
    if ascii_int(raw.strip()) is None:
        raise errors.ValidationFailed(
            f"invalid Customer-Id {raw!r}: expected a customer number", field="Customer-Id"
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("a Bearer token is required")
    return await authenticate(request)


def _job_id(text: str) -> int:
    found = ascii_int(text, low=1)
    if found is None:
        raise errors.NotFound(NO_SUCH_JOB)
    return found


async def _call(fn: Callable[[], T]) -> T:
    return await run_in_threadpool(fn)


def _bad(name: str, expected: str, value: Any) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"invalid {name} {value!r}: expected {expected}", field=name)


def _object(data: Any, *, optional: bool) -> dict[str, Any]:
    if data is None and optional:
        return {}
    if not isinstance(data, dict):
        raise errors.ValidationFailed("the request body must be a JSON object")
    return data


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(name, "a string", value)
    return value


def _id_member(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _bad(name, "an integer id from 1", value)
    return value


def _time_member(body: Mapping[str, Any], name: str) -> datetime | None:
    value = _text(body, name)
    return None if value is None else parse_datetime(value, name=name)


def _bounded(text: str | None, name: str, low: int, high: int, default: int) -> int:
    if text is None or text == "":
        return default
    found = ascii_int(text.strip(), low=low, high=high)
    if found is None:
        raise _bad(name, f"an integer from {low} to {high}", text)
    return found


def _page_request(request: Request) -> PageRequest:
    query = request.query_params
    number = _bounded(query.get("pageNumber"), "pageNumber", 1, MAX_PAGE_NUMBER, 1)
    size = _bounded(query.get("pageSize"), "pageSize", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    return PageRequest(page=number, limit=size)


def _values(request: Request, name: str) -> list[str]:
    """An array parameter: repeated (`status=a&status=b`) or comma-separated."""
    found = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")]
    found = [v for v in found if v]
    if len(found) > MAX_FILTER_VALUES:
        raise errors.ValidationFailed(
            f"at most {MAX_FILTER_VALUES} {name} values may be given", field=name
        )
    return found


def _direction(request: Request) -> bool:
    text = request.query_params.get("direction") or "ascending"
    if text not in DIRECTIONS:
        raise _bad("direction", "ascending or descending", text)
    return DIRECTIONS[text]


# Listing filters ---------------------------------------------------------------------------


def _status_filters(values: Sequence[str], now: datetime) -> list[Filter]:
    if not values:
        return []
    for value in values:
        if value not in BIGCHANGE_STATUSES:
            raise _bad("status", "one of " + ", ".join(BIGCHANGE_STATUSES), value)
    wanted = set(values)
    natives = {native for native, shown in STATUS_OF.items() if shown in wanted}
    pending_views = wanted & {NEW, SCHEDULED}
    if pending_views:
        natives.add(JobStatus.PENDING)
    if not natives:  # only statuses jobyard jobs never have
        return [Filter("id", Op.LT, "1")]
    chosen = "|".join(sorted(s.value for s in natives))
    found = [Filter("status", Op.MATCH, f"^({chosen})$")]
    if len(pending_views) == 1:
        if natives != {JobStatus.PENDING}:
            raise errors.ValidationFailed(
                f"status {next(iter(pending_views))} cannot be combined with other statuses "
                "here: give new and scheduled together, or it alone",
                field="status",
            )
        op = Op.GT if SCHEDULED in pending_views else Op.LE
        found.append(Filter("run_at", op, now.isoformat()))
    return found


def _type_filters(values: Sequence[str]) -> list[Filter]:
    if not values:
        return []
    if len(values) > 1:
        raise errors.ValidationFailed("only one typeId may be given here", field="typeId")
    if ascii_int(values[0], low=1) is None:
        raise _bad("typeId", "an integer id from 1", values[0])
    return [Filter("package_id", Op.EQ, values[0])]


def _listing(request: Request, now: datetime) -> Listing:
    query = request.query_params
    chosen = [
        *_status_filters(_values(request, "status"), now),
        *_type_filters(_values(request, "typeId")),
    ]
    sort_by = query.get("sortBy") or "id"
    if sort_by not in SORT_FIELDS:
        raise _bad("sortBy", "one of " + ", ".join(SORT_FIELDS), sort_by)
    return Listing(
        filters=[check_filter(f, JOB_FIELDS) for f in chosen],
        combine=Combine.INTER,
        sort=[SortKey(SORT_FIELDS[sort_by], _direction(request))],
        page=_page_request(request),
    )


# Routes ------------------------------------------------------------------------------------


@router.get("")
async def list_jobs(request: Request, who: Principal = Depends(caller)) -> Response:
    now = utcnow()
    wanted = _listing(request, now)
    found, _total = await _call(
        lambda: jobs.list_jobs(runtime_of(request), actor=who, request=wanted)
    )
    return _page([present_job(j, now) for j in found], wanted.page)


@router.post("")
async def create_job(request: Request, who: Principal = Depends(caller)) -> Response:
    """`typeId` names the package; description, reference and contactId go in the context."""
    body = _object(await bodies.read_json(request), optional=False)
    type_id = _id_member(body, "typeId")
    if type_id is None:
        raise errors.ValidationFailed("typeId is required", field="typeId")
    context: dict[str, Any] = {}
    for name in ("description", "reference"):
        text = _text(body, name)
        if text is not None:
            context[name] = text
    contact = _id_member(body, "contactId")
    if contact is not None:
        context["contactId"] = contact
    launch = jobs.LaunchRequest(
        package_id=type_id, run_at=_time_member(body, "plannedStartAt"), context=context
    )
    try:
        job = await _call(lambda: jobs.launch_job(runtime_of(request), actor=who, request=launch))
    except errors.NotFound as exc:  # a body reference: the request is unprocessable, not absent
        raise errors.RuleViolation(
            f"no job type {type_id}: {exc.message}", field="typeId"
        ) from None
    return render.json_response({"id": job.id}, int(HTTPStatus.CREATED))


@router.get("/{job_id}")
async def get_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = _job_id(job_id)
    found = await _call(lambda: jobs.get_job(runtime_of(request), actor=who, job_id=target))
    return render.json_response(present_job(found, utcnow()))


@router.put("/{job_id}/result")
async def set_result(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    """The seed's endpoint: the job must be started; `result` must match one of its type's
    options exactly (the service checks both: 422)."""
    target = _job_id(job_id)
    body = _object(await bodies.read_json(request), optional=False)
    status = body.get("status")
    if not isinstance(status, str):
        raise _bad("status", "completedOk or completedWithIssues", status)
    result = _text(body, "result")
    if result == "":
        raise errors.ValidationFailed("result must not be empty when given", field="result")
    _time_member(body, "statusModifiedAt")  # checked; the service keeps its own clock
    outcome = Outcome(parse_status(status), result or "")
    await _call(
        lambda: outcomes.set_outcome(runtime_of(request), actor=who, job_id=target, outcome=outcome)
    )
    return render.no_content()


@router.put("/{job_id}/start")
async def start_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = _job_id(job_id)
    body = _object(await bodies.read_json(request), optional=True)
    _text(body, "comment")  # checked; the service records its own reason
    _time_member(body, "statusModifiedAt")
    await _call(lambda: outcomes.start_job(runtime_of(request), actor=who, job_id=target))
    return render.no_content()


@router.put("/{job_id}/cancel")
async def cancel_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    target = _job_id(job_id)
    body = _object(await bodies.read_json(request), optional=True)
    reason = _text(body, "reason")
    # BigChange cancels only jobs not yet started ("Cancel a job": 422 once started).
    await _call(
        lambda: jobs.cancel_job(
            runtime_of(request), actor=who, job_id=target, only_pending=True, reason=reason or ""
        )
    )
    return render.no_content()


@router.get("/{job_id}/status/history")
async def status_history(
    job_id: str, request: Request, who: Principal = Depends(caller)
) -> Response:
    """Every status change of the job, oldest first unless `direction=descending`."""
    target = _job_id(job_id)
    sort_by = request.query_params.get("sortBy") or "createdAt"
    if sort_by != "createdAt":
        raise _bad("sortBy", "createdAt", sort_by)
    descending = _direction(request)
    page = _page_request(request)

    def read() -> tuple[Job, list[JobEvent]]:
        rt = runtime_of(request)
        return (
            jobs.get_job(rt, actor=who, job_id=target),
            jobs.list_job_events(rt, actor=who, job_id=target),
        )

    job, events = await _call(read)
    ordered = sorted(events, key=lambda e: (e.at, e.id), reverse=descending)
    chosen = ordered[page.offset : page.offset + (page.limit or len(ordered))]
    return _page([present_event(e, job) for e in chosen], page)
