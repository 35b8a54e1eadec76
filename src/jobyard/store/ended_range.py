"""A page of a customer's jobs that ended within a range, sorted by another key, on
PostgreSQL: the jobs of the range read from the index of ends, then sorted.

PostgreSQL's planner walks the index of the sort key (creation, say) from its end, testing
each job's end against the range, as if matches were everywhere: for a week of ends months
back it read every job created since before reaching one (50-100 ms over 1,000,000 jobs).
The index of ends holds each job's id, creation, `updated` and status as well, so the
range's jobs come from it alone, and sorting a few tens of thousands of keys takes a few
milliseconds. The sort puts NULLs at the end no index holds them at: the keys sorted this
way are never NULL, so the order is the same, and no index can give it, so the planner
reads the range instead of walking another index. Beyond `MOST_ROWS` jobs in the range, the
sorted walk is left to the planner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Select

from jobyard.domain.filters import ORDER_OPS, Combine
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.store import listing
from jobyard.store.db import serial

# Past this many jobs in the range, sorting them all costs more than a sorted walk might.
MOST_ROWS = 50_000
# The fields whose columns the index of ends holds (tables.CARRIED): filters and a sort on
# them read that index alone.
HELD = frozenset({"finished", "id", "created", "updated", "status"})
# (All of them are NOT NULL but `finished`, which is never the sort here.)


def applies(request: Listing, total: int) -> bool:
    """Whether a page of this list is read this way: one sort key other than `finished`,
    every filter (all to hold) on a field the index of ends holds, one of them a range of
    ends, and no more than MOST_ROWS jobs."""
    if len(request.sort) != 1 or request.sort[0].field not in HELD - {"finished"}:
        return False
    if request.page.limit is None or total > MOST_ROWS:
        return False
    if len(request.filters) > 1 and request.combine is not Combine.INTER:
        return False
    fields = {f.field for f in request.filters}
    ranged = any(f.field == "finished" and f.op in ORDER_OPS for f in request.filters)
    return ranged and fields <= HELD


def page_ids(
    conn: Connection,
    filtered: Select[Any],
    sort: ColumnElement[Any],
    *,
    descending: bool,
    page: PageRequest,
    id_column: ColumnElement[Any],
) -> list[Any]:
    """The ids of one page of `filtered` (narrowed by the list's filters, with no order)
    sorted by `sort`, ties by id in the same direction."""
    if page.limit is None:
        raise ValueError("a page of a range needs a limit")
    terms = (_unwalkable(sort, descending), _unwalkable(id_column, descending))
    query = filtered.with_only_columns(id_column).order_by(*terms)
    with serial(conn):
        rows = listing.run(conn, query.limit(page.limit).offset(page.offset))
    return [row[0] for row in rows]


def _unwalkable(column: ColumnElement[Any], descending: bool) -> ColumnElement[Any]:
    # An ascending index holds NULLs last, so its walk either way gives `ASC NULLS LAST` or
    # `DESC NULLS FIRST`; the other placement is the same order for a column never NULL.
    return column.desc().nulls_last() if descending else column.asc().nulls_first()
