"""The webhook dispatcher: a thread that makes new events (the outbox) into deliveries and
sends the due ones, each try recorded (`services.webhooks`). Every `serve` and `worker` that
fires schedules runs one; they share the work without electing anyone (PostgreSQL locks
what one takes; SQLite has one writer), and a delivery taken by a dispatcher that died is
sent again once its lease lapses."""

from __future__ import annotations

import logging
import threading

import httpx

from jobyard.domain.webhooks import Attempt
from jobyard.services import sealing, webhooks
from jobyard.services.runtime import Runtime, utcnow
from jobyard.worker import webhook_sending

logger = logging.getLogger(__name__)

ERROR_PAUSE_SECONDS = 1.0  # after a failed round (the database out of reach)


class Dispatcher:
    """Delivers webhook events from a thread of its own until stopped."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="jobyard-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(self.rt.settings.webhook_timeout_seconds + 5)

    def _loop(self) -> None:
        timeout = self.rt.settings.webhook_timeout_seconds
        with webhook_sending.new_client(timeout) as client:
            while not self._stopped.is_set():
                self._stopped.wait(self._round(client))

    def _round(self, client: httpx.Client) -> float:
        """Move new events, send what is due; return how long to sleep."""
        poll = self.rt.settings.webhook_poll_seconds
        try:
            webhooks.fan_out(self.rt)
            self._send_due(client)
            due_in = webhooks.seconds_until_due(self.rt)
        except Exception:
            logger.exception("delivering webhooks failed; trying again")
            return ERROR_PAUSE_SECONDS
        return poll if due_in is None else min(due_in, poll)

    def _send_due(self, client: httpx.Client) -> None:
        allowed = webhooks.allowed_networks(self.rt.settings)
        while not self._stopped.is_set():
            due = webhooks.take_due(self.rt)
            for one in due:
                if one.secret is None:
                    attempt = Attempt(utcnow(), None, sealing.Unreadable().message, 0)
                else:
                    attempt = webhook_sending.send(
                        client, one.delivery, one.webhook, one.secret, allowed=allowed, at=utcnow()
                    )
                webhooks.record_result(self.rt, one.delivery, one.webhook, attempt)
            if len(due) < webhooks.SEND_BATCH:
                return
