"""Schedules and their fire times in the database: rows in, domain records out; the due ones
taken for a scheduler, and the (schedule, fire time) row that makes a fire launch once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.domain import vocabulary
from jobyard.domain.listing import Listing
from jobyard.domain.schedules import Fire, FireOutcome, Misfire, Schedule, Timing
from jobyard.errors import NotFound
from jobyard.store import listing, tables
from jobyard.store.jobs import options_from_json

S = tables.schedules
F = tables.schedule_fires
J = tables.jobs

FIELDS = listing.fields(
    vocabulary.SCHEDULE_FIELDS,
    {
        "id": S.c.id,
        "name": S.c.name,
        "description": S.c.description,
        "package_id": S.c.package_id,
        "device_id": func.coalesce(S.c.device_id, 0),
        "config_id": func.coalesce(S.c.config_id, 0),
        "cron": func.coalesce(S.c.cron, ""),
        "interval": func.coalesce(S.c.interval_seconds, 0),
        "timezone": S.c.timezone,
        "misfire": S.c.misfire,
        "skip_if_running": S.c.skip_if_running,
        "paused": S.c.paused,
        "next_run": S.c.next_run,
        "last_fire_time": S.c.last_fire_time,
        "user_id": S.c.user_id,
        "created": S.c.created,
        "updated": S.c.updated,
    },
)


def schedule_from_row(row: Row[Any]) -> Schedule:
    return Schedule(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        package_id=row.package_id,
        device_id=row.device_id,
        config_id=row.config_id,
        options=options_from_json(row.options),
        context=dict(row.context),
        priority=row.priority,
        timing=Timing(
            cron=row.cron,
            interval_seconds=row.interval_seconds,
            timezone=row.timezone,
            anchor=row.next_run or row.updated,
        ),
        misfire=Misfire(row.misfire),
        skip_if_running=bool(row.skip_if_running),
        paused=bool(row.paused),
        next_run=row.next_run,
        user_id=row.user_id,
        created=row.created,
        updated=row.updated,
        last_fire_time=row.last_fire_time,
        last_job_id=row.last_job_id,
    )


def get_schedule(conn: Connection, schedule_id: int, *, tenant_id: int) -> Schedule:
    """A schedule by id; another tenant's does not exist."""
    row = conn.execute(select(S).where(S.c.id == schedule_id, S.c.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound(vocabulary.NOT_FOUND_MESSAGES["schedules"])
    return schedule_from_row(row)


def list_schedules(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[Schedule], int]:
    query = select(S).where(S.c.tenant_id == tenant_id)
    query = listing.apply(query, request, FIELDS, pg=pg, tiebreak=S.c.id)
    rows, total = listing.fetch_page(conn, query, request.page)
    return [schedule_from_row(r) for r in rows], total


def update_schedule(conn: Connection, schedule_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(S).where(S.c.id == schedule_id).values(**values))


def delete_schedule(conn: Connection, schedule_id: int) -> None:
    conn.execute(S.delete().where(S.c.id == schedule_id))


def earliest_next_run(conn: Connection) -> datetime | None:
    """When the next schedule of any tenant is due (None: none is)."""
    value: datetime | None = conn.execute(select(func.min(S.c.next_run))).scalar_one()
    return value


def take_due(conn: Connection, *, now: datetime, limit: int, pg: bool) -> list[Schedule]:
    """Schedules due by `now`, locked on PostgreSQL (and skipped when another scheduler holds
    them: it is firing them). On SQLite the write transaction already excludes the others."""
    query = (
        select(S)
        .where(S.c.next_run.is_not(None), S.c.next_run <= now)
        .order_by(S.c.next_run, S.c.id)
        .limit(limit)
    )
    if pg:
        query = query.with_for_update(skip_locked=True)
    return [schedule_from_row(row) for row in conn.execute(query)]


def claim_fire(conn: Connection, *, schedule_id: int, fire_time: datetime, at: datetime) -> bool:
    """Insert the fire time's row unless it exists: True when this transaction owns it. A
    concurrent insert of the same key waits for the other transaction and then finds it."""
    values = {
        "schedule_id": schedule_id,
        "fire_time": fire_time,
        "outcome": FireOutcome.REFUSED.value,  # until this transaction records what it did
        "job_id": None,
        "note": "",
        "at": at,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(F)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[F.c.schedule_id, F.c.fire_time])
        .returning(literal_column("1"))
    )
    return conn.execute(statement).first() is not None


def record_fire(
    conn: Connection,
    *,
    schedule_id: int,
    fire_time: datetime,
    outcome: FireOutcome,
    job_id: int | None,
    note: str,
) -> None:
    conn.execute(
        update(F)
        .where(F.c.schedule_id == schedule_id, F.c.fire_time == fire_time)
        .values(outcome=outcome.value, job_id=job_id, note=note)
    )


def job_status(conn: Connection, job_id: int) -> str | None:
    found: str | None = conn.execute(
        select(J.c.status).where(J.c.id == job_id)
    ).scalar_one_or_none()
    return found


def list_fires(
    conn: Connection, schedule_id: int, *, offset: int, limit: int | None
) -> tuple[list[Fire], int]:
    """A schedule's fire times, newest first, with each job's status now."""
    query = (
        select(F, J.c.status.label("job_status"))
        .outerjoin(J, J.c.id == F.c.job_id)
        .where(F.c.schedule_id == schedule_id)
        .order_by(F.c.fire_time.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    total = conn.execute(
        select(func.count()).select_from(F).where(F.c.schedule_id == schedule_id)
    ).scalar_one()
    return [_fire(row) for row in conn.execute(query)], int(total)


def _fire(row: Row[Any]) -> Fire:
    return Fire(
        schedule_id=row.schedule_id,
        fire_time=row.fire_time,
        outcome=FireOutcome(row.outcome),
        job_id=row.job_id,
        at=row.at,
        note=row.note,
        job_status=row.job_status,
    )


def crowded_schedules(conn: Connection, *, keep: int) -> list[int]:
    """Schedules with more than `keep` fire times recorded."""
    query = select(F.c.schedule_id).group_by(F.c.schedule_id).having(func.count() > keep)
    return list(conn.execute(query).scalars())


def trim_fires(conn: Connection, schedule_id: int, *, keep: int) -> int:
    """Forget a schedule's fire times older than its `keep` newest."""
    oldest_kept = (
        select(F.c.fire_time)
        .where(F.c.schedule_id == schedule_id)
        .order_by(F.c.fire_time.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    result = conn.execute(
        F.delete().where(F.c.schedule_id == schedule_id, F.c.fire_time < oldest_kept)
    )
    return int(result.rowcount)
