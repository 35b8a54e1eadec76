"""Figures of a tenant's jobs for the dashboard's overview: how many in each status, and how
many were launched and failed in each hour of a recent stretch."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from jobyard.store import tables

J = tables.jobs
HOUR_TEXT = "%Y-%m-%d %H"


def counts_by_status(conn: Connection, tenant_id: int) -> dict[str, int]:
    """From `job_counts`, kept exact by triggers: no job is counted here."""
    counts = tables.job_counts
    query = (
        select(counts.c.status, func.sum(counts.c.n).label("n"))
        .where(counts.c.tenant_id == tenant_id)
        .group_by(counts.c.status)
    )
    return {row.status: int(row.n) for row in conn.execute(query) if row.n}


def _hour(column: ColumnElement[Any], pg: bool) -> ColumnElement[Any]:
    """The hour a time falls in, as text `YYYY-MM-DD HH` (SQLite keeps times as text that
    begins so; PostgreSQL formats its UTC timestamp the same way)."""
    if pg:
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.substr(column, 1, 13)


def launched_by_hour(conn: Connection, tenant_id: int, since: datetime) -> dict[datetime, int]:
    """Jobs created in each hour from `since`: a range of the (tenant, created) index."""
    pg = conn.dialect.name == "postgresql"
    hour = _hour(J.c.created, pg).label("hour")
    query = (
        select(hour, func.count().label("n"))
        .where(J.c.tenant_id == tenant_id, J.c.created >= since)
        .group_by(hour)
    )
    return _by_hour(conn.execute(query))


def ended_by_hour(
    conn: Connection, tenant_id: int, since: datetime, statuses: Collection[str]
) -> dict[datetime, int]:
    """Jobs that ended in one of `statuses` in each hour from `since`."""
    pg = conn.dialect.name == "postgresql"
    hour = _hour(J.c.finished, pg).label("hour")
    query = (
        select(hour, func.count().label("n"))
        .where(J.c.tenant_id == tenant_id, J.c.finished >= since, J.c.status.in_(statuses))
        .group_by(hour)
    )
    return _by_hour(conn.execute(query))


def _by_hour(rows: Any) -> dict[datetime, int]:
    return {datetime.strptime(row.hour, HOUR_TEXT).replace(tzinfo=UTC): int(row.n) for row in rows}
