"""BigChange's answers and errors, as `/openapi.json` declares them.

`present.py` builds the job and status change (its functions are typed with these, so mypy
holds the two together). Times are ISO 8601 in UTC (`Z`); null where BigChange's own models
allow null.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from jobyard.api.openapi import WHY, schema_ref
from jobyard.api.render import PROBLEM_TYPE

BigChangeStatus = Literal[
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
]


class BigChangeJob(TypedDict):
    """A job; members are spelled as BigChange spells them."""

    id: int
    reference: str | None
    typeId: int | None
    typeName: str
    contactId: int | None
    description: str
    status: BigChangeStatus
    statusModifiedAt: str | None
    result: str | None
    createdAt: str | None
    plannedStartAt: str | None
    actualStartAt: str | None
    actualEndAt: str | None


class BigChangeStatusChange(TypedDict):
    id: int
    status: BigChangeStatus
    createdAt: str | None
    comment: str | None


class BigChangeJobPage(TypedDict):
    items: list[BigChangeJob]
    pageNumber: int
    pageSize: int
    pageItemCount: int


class BigChangeStatusPage(TypedDict):
    items: list[BigChangeStatusChange]
    pageNumber: int
    pageSize: int
    pageItemCount: int


class BigChangeCreated(TypedDict):
    id: int


class BigChangeProblem(TypedDict):
    """RFC 7807 problem details as ASP.NET writes them: no `timestamp` or `error` (the
    native `Problem` has both), and `errors` on 422 only."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: NotRequired[dict[str, list[str]]]


WHY_HERE = WHY | {
    400: "Malformed input (JSON, a member's type, an enum value, paging), or a missing or "
    "malformed `Customer-Id`.",
    401: "No Bearer token, or one that is not valid (`WWW-Authenticate: Bearer`).",
    403: "The token lacks the scope, or names another customer.",
    404: "No such job (or one of another customer); a path id that is not an int64 from 1.",
    422: "A well-formed request that breaks a rule (job status, result options, unknown job "
    "type); `errors` names the property.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation can give, in BigChange's problem shape."""
    content = {PROBLEM_TYPE: {"schema": schema_ref(BigChangeProblem)}}
    return {code: {"description": WHY_HERE[code], "content": content} for code in codes}
