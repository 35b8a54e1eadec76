"""Totals of a customer's ended jobs of a status, filtered by package and device, from the
counts that SQLite's triggers keep (`job_source_counts`, migration 0021) instead of reading
each job for its status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from jobyard.domain.filters import Combine, FieldKind, Op, typed_value
from jobyard.domain.listing import Listing
from jobyard.domain.statuses import TERMINAL
from jobyard.store import tables

C = tables.job_source_counts

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
ENDED = frozenset(status.value for status in TERMINAL)


def counted_total(conn: Connection, request: Listing, *, tenant_id: int) -> int | None:
    """The list's exact total where every filter is an equality on a field the counts are
    kept by, all of them to hold, one of them on an ended status; None otherwise."""
    conditions = _conditions(request)
    if conditions is None or not _ended_status(request):
        return None
    total = select(func.coalesce(func.sum(C.c.n), 0)).where(C.c.tenant_id == tenant_id)
    return int(conn.execute(total.where(*conditions)).scalar_one())


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
