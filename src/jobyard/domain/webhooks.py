"""Webhooks as pure rules: the events a customer subscribes to, which webhooks an event goes
to, how a delivery is signed, how long a failed one waits before its next try, and the
payload a receiver gets (docs/webhooks.md)."""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobyard.domain.models import Job
from jobyard.errors import ValidationFailed

DELIVERIES_KEPT = timedelta(days=30)  # a done delivery's log, then retention deletes it
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
SECRET_HINT_LENGTH = 4
SIGNATURE_HEADER = "Jobyard-Signature"
EVENT_HEADER = "Jobyard-Event"
DELIVERY_HEADER = "Jobyard-Delivery"


class WebhookEvent(enum.StrEnum):
    """What a webhook may subscribe to; `ping` is only ever sent by a test of the webhook."""

    LAUNCHED = "job.launched"  # the job was made (pending)
    STARTED = "job.started"  # an attempt started (running)
    FINISHED = "job.finished"  # the job took its final status
    OUTCOME = "job.outcome"  # its outcome was set
    PING = "ping"


SUBSCRIBABLE = (
    WebhookEvent.LAUNCHED,
    WebhookEvent.STARTED,
    WebhookEvent.FINISHED,
    WebhookEvent.OUTCOME,
)
DEFAULT_EVENTS = (WebhookEvent.FINISHED,)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) try
    DELIVERED = "delivered"  # a 2xx answered it
    FAILED = "failed"  # every try failed (a redelivery queues it again)


def parse_events(names: Iterable[str]) -> tuple[WebhookEvent, ...]:
    """The events a webhook subscribes to: at least one, each known, in a stable order."""
    chosen = set()
    for name in names:
        try:
            event = WebhookEvent(name)
        except ValueError:
            event = None
        if event not in SUBSCRIBABLE:
            known = ", ".join(SUBSCRIBABLE)
            raise ValidationFailed(f"unknown event {name!r}: expected {known}", field="events")
        chosen.add(event)
    if not chosen:
        raise ValidationFailed("a webhook subscribes to at least one event", field="events")
    return tuple(e for e in SUBSCRIBABLE if e in chosen)


def check_secret(secret: str) -> None:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or not secret.isprintable():
        raise ValidationFailed(
            f"a secret is {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable characters",
            field="secret",
        )


def secret_hint(secret: str) -> str:
    """What reads show of a secret: its last characters, enough to tell two apart."""
    return "…" + secret[-SECRET_HINT_LENGTH:]


@dataclass(frozen=True)
class Webhook:
    id: int
    tenant_id: int
    package_id: int | None
    url: str
    description: str
    events: tuple[WebhookEvent, ...]
    sealed_secret: str  # as stored: `services.sealing` opens it
    secret_hint: str
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    user_id: int
    created: datetime
    updated: datetime

    def wants(self, event: WebhookEvent, *, package_id: int | None) -> bool:
        """Whether this webhook is told of `event` about a job of `package_id`."""
        if not self.enabled or event not in self.events:
            return False
        return self.package_id is None or self.package_id == package_id


@dataclass(frozen=True)
class OutboxEvent:
    """An event written with the change it tells of, waiting to become deliveries."""

    id: int
    job_id: int
    tenant_id: int
    package_id: int | None
    event: WebhookEvent
    status: str
    at: datetime


@dataclass(frozen=True)
class Attempt:
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event: WebhookEvent
    job_id: int | None
    payload: Mapping[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt: datetime | None
    last_status_code: int | None
    last_error: str | None
    created: datetime
    updated: datetime
    delivered: datetime | None
    history: tuple[Attempt, ...] = ()

    def body(self) -> dict[str, Any]:
        """What is sent: the payload under the delivery's id, the same on every try."""
        return {"id": str(self.id), **self.payload}


@dataclass(frozen=True)
class RetryRules:
    """How many tries a delivery gets, the waits between them (doubling from `first_wait`
    up to `longest_wait`) and how many deliveries in a row may fail before the webhook is
    disabled."""

    max_attempts: int
    first_wait: float
    longest_wait: float
    disable_after: int

    def wait_after(self, attempts: int) -> float:
        """Seconds before the next try of a delivery tried `attempts` times."""
        return float(min(self.longest_wait, self.first_wait * 2 ** max(0, attempts - 1)))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Jobyard-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def job_summary(job: Job) -> dict[str, Any]:
    """The job as a receiver sees it (the native API's names and conventions)."""
    return {
        "id": str(job.id),
        "package_id": str(job.package_id) if job.package_id else None,
        "package_name": job.package_name,
        "status": job.status.value,
        "attempts": job.attempts,
        "exit_code": job.exit_code,
        "outcome": {
            "status": job.outcome.status.value if job.outcome else None,
            "result": job.outcome.result if job.outcome else None,
        },
        "tags": list(job.tags),
        "automatic": job.automatic,
        "created": _time(job.created),
        "started": _time(job.started),
        "finished": _time(job.finished),
    }


def payload(event: OutboxEvent, job: Job | None) -> dict[str, Any]:
    """An event's payload (the delivery's id is added when it is sent): `status` is the
    status the event is about; `job` the job as read when the event was dispatched (null if
    it was deleted by then)."""
    return {
        "event": event.event.value,
        "created": _time(event.at),
        "job_id": str(event.job_id),
        "status": event.status,
        "job": None if job is None else job_summary(job),
    }


def ping_payload(webhook_id: int, at: datetime) -> dict[str, Any]:
    return {
        "event": WebhookEvent.PING.value,
        "created": _time(at),
        "job_id": None,
        "status": None,
        "job": None,
        "webhook_id": str(webhook_id),
    }


def matching(webhooks: Sequence[Webhook], event: OutboxEvent) -> list[Webhook]:
    """The webhooks of the event's customer that want it."""
    return [
        w
        for w in webhooks
        if w.tenant_id == event.tenant_id and w.wants(event.event, package_id=event.package_id)
    ]
