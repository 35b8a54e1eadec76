"""A page of a customer's jobs created within a range, in id order, read along the index of
creation.

No index orders a range of creation by id: PostgreSQL's planner would walk the ids from the
newest one, testing each job's creation, through every job created since the range, and
SQLite would sort the whole range. Ids are given in launch order and creation is stamped at
launch, so the two orders nearly always agree, but nothing guarantees it (concurrent
launches, a clock set back). So the page's candidates are the first `offset + limit` jobs of
the range along the index of creation, in the page's direction; the scan that counts the
range for its total also counts the jobs whose id reaches the candidates' edge (the smallest
of their ids for a descending page, the largest for an ascending one). When only the
candidates reach it, they are the range's first jobs by id and the page is sorted from them;
otherwise the range is sorted whole.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, func, select

from jobyard.domain.filters import ORDER_OPS, Combine
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.store import listing
from jobyard.store.db import serial


def applies(request: Listing) -> bool:
    """Whether a page of this list is read this way: in id order (sorted by `id` either way,
    or not sorted), every filter (all to hold) a range of creation, and a page size."""
    if request.page.limit is None or not request.filters:
        return False
    if request.sort and [key.field for key in request.sort] != ["id"]:
        return False
    if len(request.filters) > 1 and request.combine is not Combine.INTER:
        return False
    return all(f.field == "created" and f.op in ORDER_OPS for f in request.filters)


def page(
    conn: Connection,
    filtered: Select[Any],
    *,
    created: ColumnElement[Any],
    id_column: ColumnElement[Any],
    descending: bool,
    page: PageRequest,
) -> tuple[list[Any], int]:
    """One page's ids of `filtered` (a customer's jobs narrowed by a range of creation, with
    no order) in id order, and the range's total."""
    if page.limit is None:
        raise ValueError("a page of a range needs a limit")
    ids = filtered.with_only_columns(id_column).order_by(None)
    walk = ids.order_by(
        listing.directed(created, descending), listing.directed(id_column, descending)
    )
    first = walk.limit(page.offset + page.limit).subquery()
    # The first jobs' id on the page's far side: none of the others may reach it.
    far = func.min if descending else func.max
    with serial(conn):
        ((walked, edge),) = listing.run(conn, _select(func.count(), far(first.c.id)))
        if edge is None:  # no job in the range
            return [], 0
        reached = id_column >= edge if descending else id_column <= edge
        counts = cast(
            "Select[Any]",
            filtered.with_only_columns(func.count(), func.count().filter(reached)).order_by(None),
        )
        ((total, reaching),) = listing.run(conn, counts)
        # Only the first jobs reach the edge: they are the range's first ones by id.
        chosen = first if reaching == walked else ids.subquery()
        rows = listing.run(conn, _page_of(select(chosen.c.id), chosen.c.id, descending, page))
    return [row[0] for row in rows], int(total)


def _page_of(
    query: Select[Any], id_column: ColumnElement[Any], descending: bool, page: PageRequest
) -> Select[Any]:
    # `id + 0` is an expression no index holds: the database sorts the jobs it has, rather
    # than walking every id for them.
    ordered = query.order_by(listing.directed(id_column + 0, descending))
    return ordered.limit(page.limit).offset(page.offset)


def _select(*columns: ColumnElement[Any]) -> Select[Any]:
    return cast("Select[Any]", select(*columns))
