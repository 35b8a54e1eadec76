"""Totals of a customer's ended jobs of a status, filtered by package and device (on SQLite,
from `job_source_counts`, migration 0021) or by one or two tags (on both databases, from
`job_tag_counts`, 0023): counts that triggers keep, instead of reading each job for its
status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from jobyard.domain.filters import Combine, FieldKind, Filter, Op, typed_value
from jobyard.domain.listing import Listing
from jobyard.domain.statuses import TERMINAL
from jobyard.store import tables

C = tables.job_source_counts
TC = tables.job_tag_counts

# The list fields the counts are kept by, with their kinds; a device's id is the one a job
# runs against (`target_device_id`), as the list shows it.
COUNTED_BY = {
    "status": (C.c.status, FieldKind.STRING),
    "package_id": (C.c.package_id, FieldKind.INTEGER),
    "package_name": (C.c.package_name, FieldKind.STRING),
    "device_id": (C.c.device_id, FieldKind.INTEGER),
    "target_device_id": (C.c.device_id, FieldKind.INTEGER),
    "device_name": (C.c.device_name, FieldKind.STRING),
}
MOST_TAGS_COUNTED = 2  # a tag alone, or a pair of them
ENDED = frozenset(status.value for status in TERMINAL)


def counted_total(conn: Connection, request: Listing, *, tenant_id: int) -> int | None:
    """The list's exact total where every filter is an equality on a field the counts are
    kept by, all of them to hold, one of them on an ended status; None otherwise."""
    conditions = _conditions(request)
    if conditions is None or not _ended_status(request):
        return None
    total = select(func.coalesce(func.sum(C.c.n), 0)).where(C.c.tenant_id == tenant_id)
    return int(conn.execute(total.where(*conditions)).scalar_one())


def tagged_total(
    conn: Connection, tags: Sequence[str], others: Sequence[Filter], *, tenant_id: int
) -> int | None:
    """The exact total of the customer's jobs that hold all of `tags` (one or two) and meet
    `others`, where those are equalities on an ended status; None otherwise."""
    held = sorted(set(tags))  # code point order, as the pairs are counted
    if not held or len(held) > MOST_TAGS_COUNTED or not others:
        return None
    statuses = [typed_value(f, FieldKind.STRING) for f in others]
    if any(f.field != "status" or f.op is not Op.EQ for f in others) or not all(
        status in ENDED for status in statuses
    ):
        return None
    first, second = (*held, "")[:2]
    total = select(func.coalesce(func.sum(TC.c.n), 0)).where(
        TC.c.tenant_id == tenant_id,
        TC.c.first_tag == first,
        TC.c.second_tag == second,
        *(TC.c.status == status for status in statuses),
    )
    return int(conn.execute(total).scalar_one())


def _conditions(request: Listing) -> list[Any] | None:
    if len(request.filters) > 1 and request.combine is not Combine.INTER:
        return None
    conditions = []
    for f in request.filters:
        if f.field not in COUNTED_BY or f.op is not Op.EQ:
            return None
        column, kind = COUNTED_BY[f.field]
        value = typed_value(f, kind)
        if isinstance(value, tuple):  # one of a set
            return None
        conditions.append(column == value)
    return conditions


def _ended_status(request: Listing) -> bool:
    """Whether the filters ask for an ended status (only ended jobs are counted)."""
    return any(
        f.field == "status" and typed_value(f, FieldKind.STRING) in ENDED for f in request.filters
    )
