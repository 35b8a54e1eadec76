"""Small helpers for API tests: create things and wait for jobs."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}


def create(client: TestClient, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1/{resource}/", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def package(client: TestClient, name: str = "hello", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "command": ["echo", "hello {who}"]} | fields
    return create(client, "packages", body)


def launch(client: TestClient, **body: Any) -> dict[str, Any]:
    return create(client, "jobs", body)


def wait_for(
    client: TestClient, job_id: str, statuses: set[str] = TERMINAL, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}/").json()["data"]
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is still {job['status']}")
        time.sleep(0.02)
