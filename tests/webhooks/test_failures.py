"""A failing receiver sees retries with backoff, then its webhook is disabled; the log shows
each try's answer; enabling it again sends what waited, and a redelivery sends again."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import create, launch, package, wait_for
from tests.webhooks.receiver import Receiver

API = "/api/v1"


def deliveries(client: TestClient, webhook_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"{API}/webhooks/{webhook_id}/deliveries/?limit=none")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def retried_with_backoff(delivery: dict[str, Any]) -> None:
    """Three tries (the settings' max_attempts), 0.1 s apart, then 0.2 s (doubled)."""
    assert delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["history"]] == [500, 500, 500]
    assert delivery["last_error"] == "answered 500 Internal Server Error"
    tried = [datetime.fromisoformat(a["at"]) for a in delivery["history"]]
    waits = [(b - a).total_seconds() for a, b in itertools.pairwise(tried)]
    assert waits[0] >= 0.1, waits  # the first wait
    assert waits[1] >= 0.2, waits  # doubled (the longest wait, 0.2 s, caps it)


def test_a_failing_receiver_sees_retries_then_a_disabled_webhook(
    hooks: TestClient, receiver: Receiver
) -> None:
    receiver.status = 500
    made = create(hooks, "webhooks", {"url": receiver.url})
    hello = package(hooks, command=["true"])
    jobs = [wait_for(hooks, launch(hooks, package_id=hello["id"])["id"]) for _ in range(3)]

    def webhook() -> dict[str, Any]:
        found: dict[str, Any] = hooks.get(f"{API}/webhooks/{made['id']}/").json()["data"]
        return found

    wait_until(lambda: not webhook()["enabled"])
    disabled = webhook()
    assert disabled["disabled_reason"] == "disabled after 2 deliveries in a row failed"
    log = deliveries(hooks, made["id"])
    failed = [d for d in log if d["status"] == "failed"]
    # The settings' disable_after; a third may have been on its last try alongside.
    assert len(failed) in {2, 3}
    assert disabled["consecutive_failures"] == len(failed)
    for delivery in failed:
        retried_with_backoff(delivery)
    requests = receiver.snapshot()
    seen = {r.json["job_id"] for r in requests}
    assert len(seen) >= 2
    assert len(requests) >= 6  # every try reached the receiver
    events = hooks.get(f"{API}/events/?filter=object_type=webhook&limit=none").json()["data"]
    assert "webhook.disable" in [e["action"] for e in events]

    # Disabled: no tries, and a redelivery is refused until it is enabled again.
    count = len(receiver.snapshot())
    time.sleep(0.5)
    assert len(receiver.snapshot()) == count
    refused = hooks.post(f"{API}/webhooks/{made['id']}/deliveries/{failed[0]['id']}/redeliver/")
    assert refused.status_code == 409, refused.text

    receiver.status = 204
    enabled = hooks.patch(f"{API}/webhooks/{made['id']}/", json={"enabled": True}).json()["data"]
    assert (enabled["enabled"], enabled["consecutive_failures"]) == (True, 0)
    assert enabled["disabled_reason"] is None
    again = hooks.post(f"{API}/webhooks/{made['id']}/deliveries/{failed[0]['id']}/redeliver/")
    assert again.status_code == 200, again.text
    assert again.json()["data"]["status"] == "pending"

    def redelivered() -> bool:
        found = [d for d in deliveries(hooks, made["id"]) if d["id"] == failed[0]["id"]]
        return found[0]["status"] == "delivered"

    wait_until(redelivered)
    # What waited while it was disabled went out once it was enabled again.
    wait_until(lambda: all(d["status"] != "pending" for d in deliveries(hooks, made["id"])))
    statuses = {d["id"]: d["status"] for d in deliveries(hooks, made["id"])}
    waited = [d["id"] for d in log if d["status"] == "pending"]
    assert all(statuses[i] == "delivered" for i in waited), statuses
    final = next(d for d in deliveries(hooks, made["id"]) if d["id"] == failed[0]["id"])
    assert [a["status_code"] for a in final["history"]] == [500, 500, 500, 204]
    assert final["last_status_code"] == 204
    assert final["delivered"] is not None
    ids = [r.json["id"] for r in receiver.snapshot()]
    assert ids.count(failed[0]["id"]) == 4  # the same delivery id on every try
    assert {j["id"] for j in jobs} >= seen
