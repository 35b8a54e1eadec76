"""A receiver gets a signed event for each finished job (and, subscribed, each launch and
start), verified with the code docs/webhooks.md gives; an outcome is an event too; the
delivery log shows every try."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import create, launch, package, wait_for
from tests.webhooks.receiver import Received, Receiver, documented_verify

API = "/api/v1"


def webhook(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    return create(client, "webhooks", {"url": url} | fields)


def test_each_finished_job_is_a_signed_event(hooks: TestClient, receiver: Receiver) -> None:
    made = webhook(hooks, receiver.url)
    secret = made["secret"]
    assert made["events"] == ["job.finished"]
    ok, bad = package(hooks, "ok", command=["true"]), package(hooks, "bad", command=["false"])
    jobs = [launch(hooks, package_id=p["id"]) for p in (ok, bad, ok)]
    for job in jobs:
        wait_for(hooks, job["id"])

    got = receiver.wait_for(lambda found: len(found) >= 3)
    verify = documented_verify()
    by_job = {}
    for request in got:
        assert verify(secret, request.headers["jobyard-signature"], request.body), request
        assert not verify(
            "another-secret-entirely", request.headers["jobyard-signature"], request.body
        )
        assert not verify(secret, request.headers["jobyard-signature"], request.body + b" ")
        body = request.json
        assert request.event == body["event"] == "job.finished"
        assert request.headers["jobyard-delivery"] == body["id"]
        by_job[body["job_id"]] = body
    assert set(by_job) == {j["id"] for j in jobs}
    assert by_job[jobs[0]["id"]]["status"] == "completed"
    assert by_job[jobs[1]["id"]]["status"] == "failed"
    failed = by_job[jobs[1]["id"]]["job"]
    assert (failed["package_name"], failed["exit_code"], failed["status"]) == ("bad", 1, "failed")
    assert failed["finished"] is not None

    # The receiver has the requests before the dispatcher records their answers.
    deadline = time.monotonic() + 10
    while True:
        log = hooks.get(f"{API}/webhooks/{made['id']}/deliveries/").json()
        if all(d["status"] != "pending" for d in log["data"]):
            break
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert log["links"]["total"] == 3
    for delivery in log["data"]:
        assert delivery["status"] == "delivered"
        assert delivery["last_status_code"] == 200
        assert [a["status_code"] for a in delivery["history"]] == [200]
    assert "secret" not in hooks.get(f"{API}/webhooks/{made['id']}/").json()["data"]


def events_of(found: list[Received], job_id: str) -> list[str]:
    return [r.event for r in found if r.json["job_id"] == job_id]


def test_launches_starts_and_outcomes_when_subscribed(
    hooks: TestClient, receiver: Receiver
) -> None:
    events = ["job.launched", "job.started", "job.finished", "job.outcome"]
    webhook(hooks, receiver.url, events=events)
    job = wait_for(hooks, launch(hooks, package_id=package(hooks, command=["true"])["id"])["id"])
    got = receiver.wait_for(lambda found: len(events_of(found, job["id"])) >= 3)
    assert sorted(events_of(got, job["id"])) == ["job.finished", "job.launched", "job.started"]

    external = package(hooks, "ext", kind="external", command=[], positive_results=["done"])
    started = launch(hooks, package_id=external["id"])
    assert hooks.post(f"{API}/jobs/{started['id']}/start/").status_code == 200
    outcome = {"status": "completedOk", "result": "done"}
    assert hooks.put(f"{API}/jobs/{started['id']}/outcome/", json=outcome).status_code == 200
    got = receiver.wait_for(lambda found: len(events_of(found, started["id"])) >= 4)
    told = {r.event: r.json for r in got if r.json["job_id"] == started["id"]}
    assert set(told) == set(events)
    assert told["job.outcome"]["job"]["outcome"] == outcome
    assert told["job.finished"]["status"] == "completed"


def test_a_package_webhook_hears_only_that_package(hooks: TestClient, receiver: Receiver) -> None:
    mine, other = (
        package(hooks, "mine", command=["true"]),
        package(hooks, "other", command=["true"]),
    )
    webhook(hooks, receiver.url, package_id=mine["id"])
    jobs = [wait_for(hooks, launch(hooks, package_id=p["id"])["id"]) for p in (other, mine)]
    got = receiver.wait_for(lambda found: len(found) >= 1)
    ping = hooks.post(f"{API}/webhooks/{create_list(hooks)[0]['id']}/test/")
    assert ping.status_code == 200, ping.text
    got = receiver.wait_for(lambda found: any(r.event == "ping" for r in found))
    assert {r.json["job_id"] for r in got if r.event != "ping"} == {jobs[1]["id"]}


def create_list(client: TestClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"{API}/webhooks/").json()["data"]
    return found
