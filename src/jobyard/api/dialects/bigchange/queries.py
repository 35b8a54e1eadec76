"""BigChange's query parameters: paging (`pageNumber`, `pageSize`), `direction`, and a job
list's filters (`status`, `typeId`) and `sortBy`, as a native listing.

FastAPI reads each parameter as text (so that `/openapi.json` declares them); this module
checks them, so that every refusal is BigChange's 400 with its own message, in the order the
list checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query

from jobyard import errors
from jobyard.api.dialects.bigchange.bodies import bad
from jobyard.api.dialects.bigchange.present import BIGCHANGE_STATUSES, NEW, SCHEDULED, STATUS_OF
from jobyard.domain.filters import Combine, Filter, Op, SortKey, check_filter
from jobyard.domain.listing import Listing
from jobyard.domain.numbers import ascii_int
from jobyard.domain.paging import PageRequest
from jobyard.domain.statuses import JobStatus
from jobyard.domain.vocabulary import JOB_FIELDS

MAX_PAGE_NUMBER = 2_147_483  # BigChange's stated bound on every list
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_FILTER_VALUES = 50
SORT_FIELDS = {
    "id": "id",
    "createdAt": "created",
    "plannedStartAt": "run_at",
    "actualStartAt": "started",
    "actualEndAt": "finished",
}
DIRECTIONS = {"ascending": False, "descending": True}


def _bounded(text: str | None, name: str, low: int, high: int, default: int) -> int:
    if text is None or text == "":
        return default
    found = ascii_int(text.strip(), low=low, high=high)
    if found is None:
        raise bad(name, f"an integer from {low} to {high}", text)
    return found


PageNumber = Annotated[
    str | None,
    Query(alias="pageNumber", description=f"The page, from 1 to {MAX_PAGE_NUMBER} (default 1)"),
]
PageSize = Annotated[
    str | None,
    Query(
        alias="pageSize",
        description=f"Items per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    ),
]
Direction = Annotated[str | None, Query(description="`ascending` (the default) or `descending`")]
Statuses = Annotated[
    list[str] | None,
    Query(
        alias="status",
        description="Only jobs in these BigChange statuses: repeated or comma-separated",
    ),
]
TypeIds = Annotated[
    list[str] | None, Query(alias="typeId", description="Only jobs of this job type (one id)")
]
SortBy = Annotated[
    str | None,
    Query(alias="sortBy", description="`" + "`, `".join(SORT_FIELDS) + "` (default `id`)"),
]
HistorySortBy = Annotated[
    str | None, Query(alias="sortBy", description="`createdAt` (the only one, the default)")
]


@dataclass(frozen=True)
class Paging:
    """A list's page and order, as given."""

    number: str | None
    size: str | None
    direction: str | None


async def paging(
    page_number: PageNumber = None, page_size: PageSize = None, direction: Direction = None
) -> Paging:
    return Paging(page_number, page_size, direction)


@dataclass(frozen=True)
class JobQuery:
    """What a job list asks for, as given."""

    statuses: list[str]
    type_ids: list[str]
    sort_by: str | None


async def job_query(
    statuses: Statuses = None, type_ids: TypeIds = None, sort_by: SortBy = None
) -> JobQuery:
    return JobQuery(statuses or [], type_ids or [], sort_by)


def page_request(given: Paging) -> PageRequest:
    number = _bounded(given.number, "pageNumber", 1, MAX_PAGE_NUMBER, 1)
    size = _bounded(given.size, "pageSize", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    return PageRequest(page=number, limit=size)


def _values(given: list[str], name: str) -> list[str]:
    """An array parameter: repeated (`status=a&status=b`) or comma-separated."""
    found = [v.strip() for raw in given for v in raw.split(",")]
    found = [v for v in found if v]
    if len(found) > MAX_FILTER_VALUES:
        raise errors.ValidationFailed(
            f"at most {MAX_FILTER_VALUES} {name} values may be given", field=name
        )
    return found


def descending(given: Paging) -> bool:
    text = given.direction or "ascending"
    if text not in DIRECTIONS:
        raise bad("direction", "ascending or descending", text)
    return DIRECTIONS[text]


def _status_filters(values: Sequence[str], now: datetime) -> list[Filter]:
    if not values:
        return []
    for value in values:
        if value not in BIGCHANGE_STATUSES:
            raise bad("status", "one of " + ", ".join(BIGCHANGE_STATUSES), value)
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
        raise bad("typeId", "an integer id from 1", values[0])
    return [Filter("package_id", Op.EQ, values[0])]


def job_listing(query: JobQuery, given: Paging, now: datetime) -> Listing:
    chosen = [
        *_status_filters(_values(query.statuses, "status"), now),
        *_type_filters(_values(query.type_ids, "typeId")),
    ]
    sort_by = query.sort_by or "id"
    if sort_by not in SORT_FIELDS:
        raise bad("sortBy", "one of " + ", ".join(SORT_FIELDS), sort_by)
    return Listing(
        filters=[check_filter(f, JOB_FIELDS) for f in chosen],
        combine=Combine.INTER,
        sort=[SortKey(SORT_FIELDS[sort_by], descending(given))],
        page=page_request(given),
    )
