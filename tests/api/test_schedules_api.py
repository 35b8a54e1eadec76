"""`/api/v1/schedules/` over HTTP with the server's own scheduler: a per-second schedule
fires on time, once per fire time, and its jobs run; pause and resume; clear 4xx for what
cannot fire; customers see only their own schedules; viewers read, operators write."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.api.helpers import create, package, wait_for

API = "/api/v1"


def fires(client: TestClient, schedule_id: str, **headers: str) -> list[dict[str, Any]]:
    answer = client.get(f"{API}/schedules/{schedule_id}/fires/?limit=none", headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def wait_for_fires(client: TestClient, schedule_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(found := fires(client, schedule_id)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_per_second_schedule_fires_on_time_once_per_fire_time(client: TestClient) -> None:
    hello = package(client, command=["true"])
    made = create(
        client,
        "schedules",
        {
            "name": "every second",
            "package_id": hello["id"],
            "cron": "* * * * * *",
            "options": {"tags": ["scheduled"]},
        },
    )
    assert made["next_run"] is not None
    assert made["cron"] == "* * * * * *"
    assert made["interval"] is None

    found = wait_for_fires(client, made["id"], 2)

    times = [at(f["fire_time"]) for f in found]
    assert times == sorted(times, reverse=True)  # newest first
    assert len(set(times)) == len(times)
    for fire in found:
        assert fire["outcome"] == "launched"
        assert timedelta(0) <= at(fire["at"]) - at(fire["fire_time"]) < timedelta(seconds=0.5)
        job = wait_for(client, fire["job_id"])
        assert job["status"] == "completed"
        assert job["automatic"] is True
        assert job["options"]["tags"] == ["scheduled"]
        assert at(job["run_at"]) == at(fire["fire_time"])
    launched = client.get(f"{API}/jobs/?filter=automatic=true&limit=none").json()["data"]
    assert {j["id"] for j in launched} >= {f["job_id"] for f in found}

    paused = client.post(f"{API}/schedules/{made['id']}/pause/").json()["data"]
    assert paused["paused"] is True
    assert paused["next_run"] is None
    assert paused["last_job_id"] is not None
    count = len(fires(client, made["id"]))
    time.sleep(1.5)
    assert len(fires(client, made["id"])) == count  # a paused schedule does not fire

    resumed = client.post(f"{API}/schedules/{made['id']}/resume/").json()["data"]
    assert resumed["paused"] is False
    assert resumed["next_run"] is not None
    events = client.get(f"{API}/events/?filter=object_type=schedule&limit=none").json()["data"]
    assert [e["action"] for e in events if e["object_id"] == made["id"]] == [
        "schedule.create",
        "schedule.pause",
        "schedule.resume",
    ]
    assert client.delete(f"{API}/schedules/{made['id']}/").status_code == 204
    assert client.get(f"{API}/schedules/{made['id']}/").status_code == 404


def test_a_cron_in_a_time_zone_and_the_list_conventions(client: TestClient) -> None:
    hello = package(client, command=["true"])
    body = {"package_id": hello["id"], "cron": "0 9 * * *", "timezone": "Europe/Paris"}
    nine = create(client, "schedules", body | {"name": "nine"})
    create(client, "schedules", {"name": "hourly", "package_id": hello["id"], "interval": 3600})
    next_run = at(nine["next_run"])
    assert next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 9

    listed = client.get(f"{API}/schedules/?filter=timezone=Europe/Paris&sort=-name").json()
    assert [s["name"] for s in listed["data"]] == ["nine"]
    assert listed["links"]["total"] == 1
    both = client.get(f"{API}/schedules/?sort=name&limit=1&page=2").json()
    assert [s["name"] for s in both["data"]] == ["nine"]
    assert both["links"]["total"] == 2

    retimed = client.patch(
        f"{API}/schedules/{nine['id']}/", json={"cron": None, "interval": 60}
    ).json()["data"]
    assert retimed["cron"] is None
    assert retimed["interval"] == 60


def test_what_cannot_fire_is_a_clear_400(client: TestClient) -> None:
    hello = package(client, command=["true"])
    base = {"name": "bad", "package_id": hello["id"]}
    cases = [
        (base | {"cron": "61 * * * *"}, "cron"),
        (base | {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "time zone"),
        (base | {"cron": "0 9 * * *", "interval": 60}, "either cron or interval"),
        (base, "either cron or interval"),
        (base | {"interval": 0}, "interval"),
        (base | {"interval": 60, "misfire": "sometimes"}, "misfire"),
        ({"name": "bad", "interval": 60}, "package_id is required"),
        (base | {"interval": 60, "options": {"extra_cli_args": "--rm -rf"}}, "--rm"),
        (base | {"interval": 60, "name": None}, "name"),
    ]
    for body, says in cases:
        answer = client.post(f"{API}/schedules/", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert says in answer.json()["detail"], (body, answer.json()["detail"])
    answer = client.post(f"{API}/schedules/", json=base | {"interval": 60, "device_id": "99"})
    assert answer.status_code == 404
    create(client, "schedules", base | {"interval": 60})
    assert client.post(f"{API}/schedules/", json=base | {"interval": 60}).status_code == 409
    in_use = client.delete(f"{API}/packages/{hello['id']}/")
    assert in_use.status_code == 409
    assert "schedule" in in_use.json()["detail"]


def test_customers_see_their_own_and_viewers_only_read(client: TestClient) -> None:
    acme = create(client, "tenants", {"name": "acme"})["id"]
    as_acme = {"Customer-Id": acme}
    theirs = client.post(
        f"{API}/packages/", json={"name": "p", "command": ["true"]}, headers=as_acme
    ).json()["data"]
    made = client.post(
        f"{API}/schedules/",
        json={"name": "s", "package_id": theirs["id"], "interval": 3600},
        headers=as_acme,
    ).json()["data"]
    assert client.get(f"{API}/schedules/{made['id']}/").status_code == 404
    assert client.get(f"{API}/schedules/{made['id']}/fires/").status_code == 404
    assert client.patch(f"{API}/schedules/{made['id']}/", json={"paused": True}).status_code == 404
    assert client.get(f"{API}/schedules/").json()["links"]["total"] == 0
    assert client.get(f"{API}/schedules/", headers=as_acme).json()["links"]["total"] == 1

    create(client, "users", {"login": "v", "password": "long-enough-pw", "role": "viewer"})
    viewer = {"Authorization": "Basic " + base64.b64encode(b"v:long-enough-pw").decode()}
    mine = create(
        client,
        "schedules",
        {"name": "m", "package_id": package(client, command=["true"])["id"], "interval": 60},
    )
    assert client.get(f"{API}/schedules/{mine['id']}/", headers=viewer).status_code == 200
    refused = client.post(f"{API}/schedules/{mine['id']}/pause/", headers=viewer)
    assert refused.status_code == 403
    assert "jobs:write" in refused.json()["detail"]
