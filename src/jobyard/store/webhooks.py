"""Webhooks, their outbox and deliveries in the database: rows in, domain records out; the
outbox taken for fan-out and the due deliveries taken for sending (locked and skipped by
other dispatchers on PostgreSQL; SQLite has one writer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy import exists as sql_exists

from jobyard.domain import vocabulary
from jobyard.domain.listing import Listing
from jobyard.domain.webhooks import (
    Attempt,
    Delivery,
    DeliveryStatus,
    OutboxEvent,
    Webhook,
    WebhookEvent,
)
from jobyard.errors import NotFound
from jobyard.store import listing, tables

W = tables.webhooks
O = tables.webhook_outbox  # noqa: E741
D = tables.webhook_deliveries
A = tables.webhook_attempts
J = tables.jobs

FIELDS = listing.fields(
    vocabulary.WEBHOOK_FIELDS,
    {
        "id": W.c.id,
        "url": W.c.url,
        "description": W.c.description,
        "package_id": func.coalesce(W.c.package_id, 0),
        "enabled": W.c.enabled,
        "consecutive_failures": W.c.consecutive_failures,
        "user_id": W.c.user_id,
        "created": W.c.created,
        "updated": W.c.updated,
    },
)
NO_SUCH_WEBHOOK = vocabulary.NOT_FOUND_MESSAGES["webhooks"]
NO_SUCH_DELIVERY = vocabulary.NOT_FOUND_MESSAGES["webhook_deliveries"]


def webhook_from_row(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        tenant_id=row.tenant_id,
        package_id=row.package_id,
        url=row.url,
        description=row.description,
        events=tuple(WebhookEvent(e) for e in row.events),
        sealed_secret=row.secret,
        secret_hint=row.secret_hint,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        consecutive_failures=row.consecutive_failures,
        user_id=row.user_id,
        created=row.created,
        updated=row.updated,
    )


def get_webhook(conn: Connection, webhook_id: int, *, tenant_id: int | None) -> Webhook:
    """A webhook by id; another tenant's does not exist (None: any tenant's)."""
    query = select(W).where(W.c.id == webhook_id)
    if tenant_id is not None:
        query = query.where(W.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(NO_SUCH_WEBHOOK)
    return webhook_from_row(row)


def list_webhooks(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[Webhook], int]:
    query = select(W).where(W.c.tenant_id == tenant_id)
    query = listing.apply(query, request, FIELDS, pg=pg, tiebreak=W.c.id)
    rows, total = listing.fetch_page(conn, query, request.page)
    return [webhook_from_row(r) for r in rows], total


def insert_webhook(conn: Connection, values: Mapping[str, Any]) -> int:
    return int(conn.execute(insert(W).values(**values).returning(W.c.id)).scalar_one())


def update_webhook(conn: Connection, webhook_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(W).where(W.c.id == webhook_id).values(**values))


def delete_webhook(conn: Connection, webhook_id: int) -> None:
    conn.execute(W.delete().where(W.c.id == webhook_id))


def enabled_webhooks(conn: Connection, tenant_ids: Iterable[int]) -> list[Webhook]:
    query = select(W).where(W.c.enabled.is_(True), W.c.tenant_id.in_(sorted(set(tenant_ids))))
    return [webhook_from_row(r) for r in conn.execute(query.order_by(W.c.id))]


def has_enabled_webhook(conn: Connection, tenant_id: int) -> bool:
    """The trigger's test, for the events no status change writes (an outcome)."""
    found = select(W.c.id).where(W.c.tenant_id == tenant_id, W.c.enabled.is_(True))
    return bool(conn.execute(select(sql_exists(found))).scalar_one())


# The outbox -------------------------------------------------------------------------------


def add_to_outbox(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(O).values(**values))


def outbox_waiting(conn: Connection) -> bool:
    return conn.execute(select(O.c.id).limit(1)).first() is not None


def take_outbox(conn: Connection, *, limit: int, pg: bool) -> list[OutboxEvent]:
    """The oldest events waiting, locked on PostgreSQL (skipped when another dispatcher
    holds them: it is moving them)."""
    query = select(O).order_by(O.c.id).limit(limit)
    if pg:
        query = query.with_for_update(skip_locked=True)
    return [
        OutboxEvent(
            id=r.id,
            job_id=r.job_id,
            tenant_id=r.tenant_id,
            package_id=r.package_id,
            event=WebhookEvent(r.event),
            status=r.status,
            at=r.at,
        )
        for r in conn.execute(query)
    ]


def delete_outbox(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(O.delete().where(O.c.id.in_(list(ids))))


# Deliveries -------------------------------------------------------------------------------


def insert_deliveries(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    return [
        int(conn.execute(insert(D).values(**row).returning(D.c.id)).scalar_one()) for row in rows
    ]


def delivery_from_row(row: Row[Any], history: Sequence[Attempt] = ()) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event=WebhookEvent(row.event),
        job_id=row.job_id,
        payload=dict(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt=row.next_attempt,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created=row.created,
        updated=row.updated,
        delivered=row.delivered,
        history=tuple(history),
    )


def get_delivery(conn: Connection, delivery_id: int, *, webhook_id: int) -> Delivery:
    row = conn.execute(select(D).where(D.c.id == delivery_id, D.c.webhook_id == webhook_id)).first()
    if row is None:
        raise NotFound(NO_SUCH_DELIVERY)
    return delivery_from_row(row, attempts_of(conn, [delivery_id]).get(delivery_id, ()))


def list_deliveries(
    conn: Connection, webhook_id: int, *, offset: int, limit: int | None
) -> tuple[list[Delivery], int]:
    """A webhook's deliveries, newest first, each with its tries."""
    query = select(D).where(D.c.webhook_id == webhook_id).order_by(D.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = list(conn.execute(query))
    total = conn.execute(
        select(func.count()).select_from(D).where(D.c.webhook_id == webhook_id)
    ).scalar_one()
    history = attempts_of(conn, [r.id for r in rows])
    return [delivery_from_row(r, history.get(r.id, ())) for r in rows], int(total)


def attempts_of(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, list[Attempt]]:
    found: dict[int, list[Attempt]] = {}
    if not delivery_ids:
        return found
    query = select(A).where(A.c.delivery_id.in_(list(delivery_ids))).order_by(A.c.id)
    for r in conn.execute(query):
        found.setdefault(r.delivery_id, []).append(
            Attempt(at=r.at, status_code=r.status_code, error=r.error, duration_ms=r.duration_ms)
        )
    return found


def take_due(
    conn: Connection, *, now: datetime, lease_until: datetime, limit: int, pg: bool
) -> list[tuple[Delivery, Webhook]]:
    """Pending deliveries of enabled webhooks due by `now`, with their webhooks; each taken
    is leased (its next try moved to `lease_until`), so that if its sender dies it is tried
    again then. Locked and skipped by other dispatchers on PostgreSQL."""
    query = (
        select(D)
        .join(W, W.c.id == D.c.webhook_id)
        .where(
            D.c.status == DeliveryStatus.PENDING.value,
            D.c.next_attempt <= now,
            W.c.enabled.is_(True),
        )
        .order_by(D.c.next_attempt, D.c.id)
        .limit(limit)
    )
    if pg:
        query = query.with_for_update(of=D, skip_locked=True)
    deliveries = [delivery_from_row(r) for r in conn.execute(query)]
    if not deliveries:
        return []
    ids = [d.id for d in deliveries]
    conn.execute(update(D).where(D.c.id.in_(ids)).values(next_attempt=lease_until))
    hooks = {
        r.id: webhook_from_row(r)
        for r in conn.execute(select(W).where(W.c.id.in_({d.webhook_id for d in deliveries})))
    }
    return [(d, hooks[d.webhook_id]) for d in deliveries]


def earliest_due(conn: Connection) -> datetime | None:
    query = (
        select(func.min(D.c.next_attempt))
        .select_from(D.join(W, W.c.id == D.c.webhook_id))
        .where(D.c.status == DeliveryStatus.PENDING.value, W.c.enabled.is_(True))
    )
    value: datetime | None = conn.execute(query).scalar_one()
    return value


def current_attempts(conn: Connection, delivery_id: int) -> int | None:
    """How many tries a delivery has had (None: it was deleted meanwhile)."""
    value: int | None = conn.execute(
        select(D.c.attempts).where(D.c.id == delivery_id)
    ).scalar_one_or_none()
    return value


def record_attempt(conn: Connection, delivery_id: int, attempt: Attempt) -> None:
    conn.execute(
        insert(A).values(
            delivery_id=delivery_id,
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
    )


def update_delivery(conn: Connection, delivery_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(D).where(D.c.id == delivery_id).values(**values))


def disable_webhook(conn: Connection, webhook_id: int, *, reason: str, now: datetime) -> bool:
    """Disable an enabled webhook; False if it was not enabled."""
    done = conn.execute(
        update(W)
        .where(W.c.id == webhook_id, W.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated=now)
    )
    return bool(done.rowcount)


def pending_due_now(conn: Connection, webhook_id: int, *, now: datetime) -> None:
    """Make a webhook's pending deliveries due now (it was enabled again)."""
    conn.execute(
        update(D)
        .where(D.c.webhook_id == webhook_id, D.c.status == DeliveryStatus.PENDING.value)
        .values(next_attempt=now)
    )


def add_failure(conn: Connection, webhook_id: int) -> int:
    """Count one more delivery failed in a row; return the count."""
    conn.execute(
        update(W)
        .where(W.c.id == webhook_id)
        .values(consecutive_failures=W.c.consecutive_failures + 1)
    )
    value = conn.execute(select(W.c.consecutive_failures).where(W.c.id == webhook_id)).scalar()
    return int(value or 0)


def delete_old_deliveries(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` deliveries made before `before` that are done (delivered or
    failed), with their tries; return how many."""
    old = (
        select(D.c.id)
        .where(D.c.created < before, D.c.status != DeliveryStatus.PENDING.value)
        .order_by(D.c.created)
        .limit(limit)
    )
    ids = list(conn.execute(old).scalars())
    if ids:
        conn.execute(D.delete().where(D.c.id.in_(ids)))
    return len(ids)
