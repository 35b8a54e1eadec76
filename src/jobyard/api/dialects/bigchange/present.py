"""BigChange's side of a job: its status names (DESIGN §3), its job and status history
models, its pages and its RFC 7807 error answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, get_args

from starlette.requests import Request
from starlette.responses import Response

from jobyard import errors
from jobyard.api import render
from jobyard.api.dialects import http
from jobyard.api.dialects.bigchange.answers import (
    BigChangeJob,
    BigChangeStatus,
    BigChangeStatusChange,
)
from jobyard.domain.models import Job, JobEvent
from jobyard.domain.paging import PageRequest
from jobyard.domain.statuses import JobStatus

# BigChange's JobStatus enum (REST v1; the alert-only lateStart/lateFinish/rescheduled are not
# shown through the API) and the native statuses each one stands for.
NEW: Final = "new"
SCHEDULED: Final = "scheduled"
BIGCHANGE_STATUSES: tuple[BigChangeStatus, ...] = get_args(BigChangeStatus)
STATUS_OF: Mapping[JobStatus, BigChangeStatus] = {
    JobStatus.PENDING: NEW,
    JobStatus.RUNNING: "started",
    JobStatus.COMPLETED: "completedOk",
    JobStatus.COMPLETED_WITH_ISSUES: "completedWithIssues",
    JobStatus.FAILED: "completedWithIssues",
    JobStatus.TIMED_OUT: "completedWithIssues",
    JobStatus.LOST: "completedWithIssues",
    JobStatus.CANCELLED: "cancelled",
}


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _pending_status(run_at: datetime, at: datetime) -> BigChangeStatus:
    return SCHEDULED if run_at > at else NEW


def status_of(job: Job, now: datetime) -> BigChangeStatus:
    """The job's BigChange status (DESIGN §3)."""
    if job.status is JobStatus.PENDING:
        return _pending_status(job.run_at, now)
    return STATUS_OF[job.status]


def _context_text(context: Mapping[str, Any], name: str) -> str | None:
    value = context.get(name)
    return value if isinstance(value, str) else None


def present_job(job: Job, now: datetime) -> BigChangeJob:
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
        "statusModifiedAt": _time(job.status_since),
        "result": (job.outcome.result or None) if job.outcome is not None else None,
        "createdAt": _time(job.created),
        "plannedStartAt": _time(job.run_at),
        "actualStartAt": _time(job.started),
        "actualEndAt": _time(job.finished),
    }


def present_event(event: JobEvent, job: Job) -> BigChangeStatusChange:
    status = STATUS_OF[event.to_status]
    if event.to_status is JobStatus.PENDING:
        status = _pending_status(job.run_at, event.at)
    return {
        "id": event.id,
        "status": status,
        "createdAt": _time(event.at),
        "comment": event.reason or None,
    }


def page(items: Sequence[Any], page: PageRequest) -> Response:
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
        "title": VALIDATION_TITLE if status == UNPROCESSABLE else http.status_phrase(status),
        "status": status,
        "detail": message,
        "instance": request.url.path,
    }
    if status == UNPROCESSABLE:
        body["errors"] = {_error_field(exc): [message]}
    response = render.json_response(body, status, media_type=render.PROBLEM_TYPE)
    return http.error_tail(response, exc, challenge='Bearer realm="jobyard"')
