"""A package's retry backoff, run by the real engine: exponential delays (capped) space the
attempts as configured, and while a job waits for its next attempt its `run_at` says when."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import launch, package, wait_for

API = "/api/v1"


def runs_of(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"{API}/runs/?filter=job_id={job_id}&sort=attempt&limit=none")
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def waiting_for_attempt(client: TestClient, job_id: str, attempts: int) -> dict[str, Any]:
    """The job as it waits after its `attempts`-th attempt failed."""
    deadline = time.monotonic() + 10
    while True:
        job: dict[str, Any] = client.get(f"{API}/jobs/{job_id}/").json()["data"]
        if job["status"] == "pending" and job["attempts"] == attempts:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.01)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_exponential_backoff_spaces_attempts_as_configured(client: TestClient) -> None:
    failing = package(
        client,
        "flaky",
        command=["false"],
        max_attempts=3,
        retry_delay=1.0,
        retry_backoff="exponential",
        retry_delay_max=1.5,
    )
    assert (failing["retry_backoff"], failing["retry_delay_max"]) == ("exponential", 1.5)
    job = launch(client, package_id=failing["id"])

    waits = []
    for attempt in (1, 2):
        waiting = waiting_for_attempt(client, job["id"], attempt)
        ended = at(runs_of(client, job["id"])[attempt - 1]["finished"])
        waits.append(at(waiting["run_at"]) - ended)  # when the next attempt is due, visibly
    final = wait_for(client, job["id"])

    assert waits == [timedelta(seconds=1), timedelta(seconds=1.5)]  # 1, then 2 capped at 1.5
    assert final["status"] == "failed"
    runs = runs_of(client, job["id"])
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    for before, after, wait in zip(runs, runs[1:], waits, strict=False):
        assert at(after["started"]) - at(before["finished"]) >= wait


def test_retry_settings_are_checked(client: TestClient) -> None:
    for bad in (
        {"retry_backoff": "linear"},
        {"retry_jitter": 1.5},
        {"retry_delay_max": -1},
    ):
        answer = client.post(f"{API}/packages/", json={"name": "p", "command": ["true"]} | bad)
        assert answer.status_code == 400, bad
    made = package(client, "p", command=["true"], retry_jitter=0.2, retry_delay_max=0)
    assert (made["retry_backoff"], made["retry_jitter"], made["retry_delay_max"]) == (
        "fixed",
        0.2,
        0,
    )
