"""Use cases on webhooks: define, edit, delete and list them (a customer's admins, for their
customer), read their delivery log, redeliver, ping; and the dispatcher's work: events from
the outbox made into deliveries, due deliveries taken, each try's result recorded.

Delivery is at least once. The outbox row is written in the transaction of the change it
tells of; moving it into deliveries deletes it in the same transaction; a delivery taken for
sending is leased (its next try moved past the time a try may take), so a dispatcher that
dies mid-send leaves it to be sent again by any other, or by itself after a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import webhook_addresses as addresses
from jobyard.domain import webhooks as rules
from jobyard.domain.listing import Listing
from jobyard.domain.models import Job
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal, Scope, require
from jobyard.domain.webhooks import (
    Attempt,
    Delivery,
    DeliveryStatus,
    OutboxEvent,
    RetryRules,
    Webhook,
    WebhookEvent,
)
from jobyard.errors import Conflict, ValidationFailed
from jobyard.services import audit, sealing
from jobyard.services.runtime import Runtime, utcnow
from jobyard.settings import Settings
from jobyard.store import catalog
from jobyard.store import jobs as job_store
from jobyard.store import webhooks as store

FAN_OUT_BATCH = 200  # outbox events made into deliveries in one transaction
SEND_BATCH = 5  # deliveries taken at once by one dispatcher, and sent one after another
LEASE_MARGIN_SECONDS = 30.0  # past a try's time limit, before a taken delivery is due again
SECRET_BYTES = 32
MAX_ERROR_LENGTH = 500


def retry_rules(settings: Settings) -> RetryRules:
    return RetryRules(
        max_attempts=settings.webhook_max_attempts,
        first_wait=settings.webhook_retry_seconds,
        longest_wait=settings.webhook_retry_max_seconds,
        disable_after=settings.webhook_disable_after,
    )


def allowed_networks(settings: Settings) -> tuple[addresses.IPNetwork, ...]:
    return addresses.parse_networks(settings.webhook_allow_networks.split(","))


# Defining webhooks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    webhook: Webhook
    secret: str  # shown in the answer that creates the webhook, and never again


def _checked_values(
    rt: Runtime, conn: Connection, values: Mapping[str, Any], *, tenant_id: int
) -> dict[str, Any]:
    """The columns a body sets, each checked (a null keeps the field as it is)."""
    row: dict[str, Any] = {}
    given = {key: value for key, value in values.items() if value is not None}
    if "url" in given:
        target = addresses.parse_url(given["url"])
        addresses.check_target(target, allowed_networks(rt.settings))
        row["url"] = target.url
    if "package_id" in values:
        package_id = values["package_id"]
        if package_id is not None:
            catalog.get_package(conn, package_id, tenant_id=tenant_id)
        row["package_id"] = package_id
    if "events" in given:
        row["events"] = [e.value for e in rules.parse_events(given["events"])]
    if "secret" in given:
        rules.check_secret(given["secret"])
        row["secret"] = sealing.seal(rt.credentials.tokens, given["secret"])
        row["secret_hint"] = rules.secret_hint(given["secret"])
    if "description" in given:
        row["description"] = given["description"]
    if "enabled" in given:
        row["enabled"] = bool(given["enabled"])
    return row


def create_webhook(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Created:
    require(actor, Scope.ADMIN)
    if not values.get("url"):
        raise ValidationFailed("url is required", field="url")
    secret = values.get("secret") or "whsec_" + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    with rt.db.transaction() as conn:
        row = _checked_values(rt, conn, {**values, "secret": secret}, tenant_id=actor.tenant_id)
        row.setdefault("events", [e.value for e in rules.DEFAULT_EVENTS])
        row |= {"tenant_id": actor.tenant_id, "user_id": actor.user_id}
        row |= {"created": now, "updated": now}
        webhook_id = store.insert_webhook(conn, row)
        audit.record(conn, actor, "webhook.create", "webhook", [webhook_id], detail=_detail(row))
        created = store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
    return Created(created, secret)


def _detail(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a change: never the secret, only that it changed."""
    shown = {k: v for k, v in row.items() if k in {"url", "package_id", "events", "enabled"}}
    return shown | ({"secret": "changed"} if "secret" in row else {})


def edit_webhook(
    rt: Runtime, *, actor: Principal, webhook_id: int, values: Mapping[str, Any]
) -> Webhook:
    """Change a webhook; enabling a disabled one forgets its failures."""
    require(actor, Scope.ADMIN)
    now = utcnow()
    with rt.db.transaction() as conn:
        before = store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
        row = _checked_values(rt, conn, values, tenant_id=actor.tenant_id)
        if row.get("enabled") and not before.enabled:
            row |= {"consecutive_failures": 0, "disabled_reason": None}
            store.pending_due_now(conn, webhook_id, now=now)  # what waited goes out at once
        elif row.get("enabled") is False and before.enabled:
            row["disabled_reason"] = f"disabled by {actor.login or 'an admin'}"
        store.update_webhook(conn, webhook_id, row | {"updated": now})
        audit.record(conn, actor, "webhook.edit", "webhook", [webhook_id], detail=_detail(row))
        return store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)


def delete_webhook(rt: Runtime, *, actor: Principal, webhook_id: int) -> None:
    """Delete a webhook with its delivery log; what was not delivered yet never will be."""
    require(actor, Scope.ADMIN)
    with rt.db.transaction() as conn:
        store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
        store.delete_webhook(conn, webhook_id)
        audit.record(conn, actor, "webhook.delete", "webhook", [webhook_id])


def get_webhook(rt: Runtime, *, actor: Principal, webhook_id: int) -> Webhook:
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)


def list_webhooks(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Webhook], int]:
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return store.list_webhooks(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)


def list_deliveries(
    rt: Runtime, *, actor: Principal, webhook_id: int, page: PageRequest
) -> tuple[list[Delivery], int]:
    """A webhook's delivery log, newest first, each delivery with its tries."""
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
        return store.list_deliveries(conn, webhook_id, offset=page.offset, limit=page.limit)


def redeliver(rt: Runtime, *, actor: Principal, webhook_id: int, delivery_id: int) -> Delivery:
    """Queue a delivery again, to be sent now with a full set of tries (its log stays)."""
    require(actor, Scope.ADMIN)
    now = utcnow()
    with rt.db.transaction() as conn:
        webhook = store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
        store.get_delivery(conn, delivery_id, webhook_id=webhook_id)
        if not webhook.enabled:
            raise Conflict("the webhook is disabled: enable it (PATCH enabled) to redeliver")
        store.update_delivery(
            conn,
            delivery_id,
            {"status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt": now}
            | {"updated": now},
        )
        audit.record(conn, actor, "webhook.redeliver", "webhook", [webhook_id])
        return store.get_delivery(conn, delivery_id, webhook_id=webhook_id)


def ping(rt: Runtime, *, actor: Principal, webhook_id: int) -> Delivery:
    """Queue a `ping` event to the webhook, to be sent now, to try its receiver."""
    require(actor, Scope.ADMIN)
    now = utcnow()
    with rt.db.transaction() as conn:
        webhook = store.get_webhook(conn, webhook_id, tenant_id=actor.tenant_id)
        if not webhook.enabled:
            raise Conflict("the webhook is disabled: enable it (PATCH enabled) to ping it")
        row = _delivery_row(
            webhook.id, WebhookEvent.PING, None, rules.ping_payload(webhook.id, now), now
        )
        [delivery_id] = store.insert_deliveries(conn, [row])
        return store.get_delivery(conn, delivery_id, webhook_id=webhook_id)


# Events that change no status -----------------------------------------------------------


def record_outcome(conn: Connection, job: Job, *, at: datetime) -> None:
    """An outcome set: in its own transaction, the outbox row no trigger writes for it."""
    if not store.has_enabled_webhook(conn, job.tenant_id):
        return
    store.add_to_outbox(
        conn,
        {
            "job_id": job.id,
            "tenant_id": job.tenant_id,
            "package_id": job.package_id or None,
            "event": WebhookEvent.OUTCOME.value,
            "status": job.status.value,
            "at": at,
        },
    )


# The dispatcher's work --------------------------------------------------------------------


def _delivery_row(
    webhook_id: int, event: WebhookEvent, job_id: int | None, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "event": event.value,
        "job_id": job_id,
        "payload": payload,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt": now,
        "created": now,
        "updated": now,
    }


def fan_out(rt: Runtime) -> int:
    """Make the outbox's events into deliveries, one per webhook that wants each, and delete
    them from the outbox in the same transaction; return how many deliveries were made."""
    made = 0
    while True:
        with rt.db.read() as conn:
            if not store.outbox_waiting(conn):
                return made
        with rt.db.transaction() as conn:
            events = store.take_outbox(conn, limit=FAN_OUT_BATCH, pg=rt.pg)
            made += _deliveries_of(conn, events)
            store.delete_outbox(conn, [e.id for e in events])
        if len(events) < FAN_OUT_BATCH:
            return made


def _deliveries_of(conn: Connection, events: list[OutboxEvent]) -> int:
    if not events:
        return 0
    hooks = store.enabled_webhooks(conn, {e.tenant_id for e in events})
    jobs = {j.id: j for j in job_store.get_existing_jobs(conn, sorted({e.job_id for e in events}))}
    now = utcnow()
    rows = [
        _delivery_row(
            hook.id, event.event, event.job_id, rules.payload(event, jobs.get(event.job_id)), now
        )
        for event in events
        for hook in rules.matching(hooks, event)
    ]
    store.insert_deliveries(conn, rows)
    return len(rows)


@dataclass(frozen=True)
class Due:
    """A delivery to try now, its webhook, and the webhook's secret (None: unreadable with
    this server's key, which makes the try fail saying so)."""

    delivery: Delivery
    webhook: Webhook
    secret: str | None


def _opened(rt: Runtime, webhook: Webhook) -> str | None:
    try:
        return sealing.unseal(rt.credentials.tokens, webhook.sealed_secret)
    except sealing.Unreadable:
        return None


def take_due(rt: Runtime, *, limit: int = SEND_BATCH) -> list[Due]:
    """Deliveries due now, leased to this dispatcher for as long as their tries may take
    one after another."""
    now = utcnow()
    with rt.db.read() as conn:  # a read first: on SQLite a write would queue for the writer
        earliest = store.earliest_due(conn)
    if earliest is None or earliest > now:
        return []
    tries = rt.settings.webhook_timeout_seconds * limit
    lease = timedelta(seconds=tries + LEASE_MARGIN_SECONDS)
    with rt.db.transaction() as conn:
        taken = store.take_due(conn, now=now, lease_until=now + lease, limit=limit, pg=rt.pg)
    return [Due(delivery, webhook, _opened(rt, webhook)) for delivery, webhook in taken]


def seconds_until_due(rt: Runtime) -> float | None:
    with rt.db.read() as conn:
        if store.outbox_waiting(conn):
            return 0.0
        earliest = store.earliest_due(conn)
    return None if earliest is None else max(0.0, (earliest - utcnow()).total_seconds())


def record_result(rt: Runtime, delivery: Delivery, webhook: Webhook, attempt: Attempt) -> None:
    """Log a try and decide what follows: delivered; or another try after the backoff; or,
    its tries used up, failed, and the webhook disabled after too many such in a row."""
    rules_ = retry_rules(rt.settings)
    error = None if attempt.error is None else attempt.error[:MAX_ERROR_LENGTH]
    with rt.db.transaction() as conn:
        attempts = store.current_attempts(conn, delivery.id)
        if attempts is None:
            return  # the webhook (and its log) was deleted meanwhile
        attempts += 1
        store.record_attempt(
            conn, delivery.id, Attempt(attempt.at, attempt.status_code, error, attempt.duration_ms)
        )
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": attempt.status_code,
            "last_error": error,
            "updated": attempt.at,
        }
        if attempt.succeeded:
            values |= {"status": DeliveryStatus.DELIVERED.value, "next_attempt": None}
            values["delivered"] = attempt.at
            store.update_webhook(conn, webhook.id, {"consecutive_failures": 0})
        elif not rules_.exhausted(attempts):
            wait = timedelta(seconds=rules_.wait_after(attempts))
            values["next_attempt"] = attempt.at + wait
        else:
            values |= {"status": DeliveryStatus.FAILED.value, "next_attempt": None}
            _count_failure(conn, webhook, rules_)
        store.update_delivery(conn, delivery.id, values)


def _count_failure(conn: Connection, webhook: Webhook, rules_: RetryRules) -> None:
    failures = store.add_failure(conn, webhook.id)
    if failures < rules_.disable_after:
        return
    reason = f"disabled after {failures} deliveries in a row failed"
    if not store.disable_webhook(conn, webhook.id, reason=reason, now=utcnow()):
        return  # disabled already (by a try sent alongside this one, or by an admin)
    audit.record(
        conn,
        None,
        "webhook.disable",
        "webhook",
        [webhook.id],
        tenant_id=webhook.tenant_id,
        detail={"reason": reason},
    )
