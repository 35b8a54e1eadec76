"""Custom results, outcomes against result options, external jobs, and a job that reports its
own outcome with its token: on both databases."""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.api.helpers import create, launch
from tests.conftest import AUTH, LiveServer

FUTURE = "9999-01-01T00:00:00Z"


def _external(client: TestClient, negative: list[str] | None = None) -> dict[str, Any]:
    body = {
        "name": "inspection",
        "kind": "external",
        "positive_results": ["Done", "Fixed on site"],
        "negative_results": negative,
    }
    return create(client, "packages", body)


def test_results_are_appended_and_listed_newest_first(client: TestClient) -> None:
    pkg = create(client, "packages", {"name": "t", "command": ["true"]})
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)
    url = f"/api/v1/jobs/{job['id']}/results/"

    assert client.post(url, json={"first": 1}).status_code == 200
    assert client.patch(url, json={"second": [1, 2], "nested": {"a": True}}).status_code == 200
    listed = client.get(url).json()["data"]

    assert [r["payload"] for r in listed] == [
        {"second": [1, 2], "nested": {"a": True}},
        {"first": 1},
    ]
    assert all(r["by"] == "1" for r in listed)
    assert client.post(url, json=[1, 2]).status_code == 400
    too_big = client.post(url, json={"x": "y" * 70_000})
    assert too_big.status_code == 413
    assert "at most" in too_big.json()["error"]
    assert client.get("/api/v1/jobs/999/results/").status_code == 404


def test_an_external_job_is_started_and_completed_through_the_api(client: TestClient) -> None:
    pkg = _external(client, negative=["Failed"])
    job = launch(client, package_id=pkg["id"])
    outcome = f"/api/v1/jobs/{job['id']}/outcome/"
    time.sleep(0.3)  # no worker may touch it
    assert client.get(f"/api/v1/jobs/{job['id']}/").json()["data"]["status"] == "pending"

    early = client.put(outcome, json={"status": "completedOk", "result": "Done"})
    assert early.status_code == 422
    assert "errors" in early.json()
    started = client.post(f"/api/v1/jobs/{job['id']}/start/")
    assert started.json()["data"]["status"] == "running"
    for wrong in ("done", "Done ", " Done", "Failed"):
        refused = client.put(outcome, json={"status": "completedOk", "result": wrong})
        assert refused.status_code == 422, wrong
        assert refused.json()["errors"]["result"]
    bad_status = client.put(outcome, json={"status": "finished", "result": "Done"})
    assert bad_status.status_code == 400

    done = client.put(outcome, json={"status": "completedOk", "result": "Fixed on site"})

    assert done.status_code == 200
    data = done.json()["data"]
    assert data["status"] == "completed"
    assert data["outcome"] == {"status": "completedOk", "result": "Fixed on site"}
    events = client.get(f"/api/v1/jobs/{job['id']}/events/").json()["data"]
    assert [e["to"] for e in events] == ["pending", "running", "completed"]
    again = client.put(outcome, json={"status": "completedOk", "result": "Done"})
    assert again.status_code == 422


def test_no_negative_results_means_never_completed_with_issues(client: TestClient) -> None:
    job = launch(client, package_id=_external(client, negative=None)["id"])
    client.post(f"/api/v1/jobs/{job['id']}/start/")

    refused = client.put(
        f"/api/v1/jobs/{job['id']}/outcome/", json={"status": "completedWithIssues", "result": "x"}
    )

    assert refused.status_code == 422
    assert "no negative results" in refused.json()["error"]


def test_completed_with_issues_takes_a_negative_result(client: TestClient) -> None:
    job = launch(client, package_id=_external(client, negative=["Failed", "Partial"])["id"])
    client.post(f"/api/v1/jobs/{job['id']}/start/")

    done = client.put(
        f"/api/v1/jobs/{job['id']}/outcome/",
        json={"status": "completedWithIssues", "result": "Partial"},
    )

    assert done.json()["data"]["status"] == "completed_with_issues"


def test_a_command_job_cannot_be_started_by_hand(client: TestClient) -> None:
    pkg = create(client, "packages", {"name": "t", "command": ["true"]})
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)
    assert client.post(f"/api/v1/jobs/{job['id']}/start/").status_code == 422


REPORTER = """
import json, os, urllib.request
url = os.environ["JOBYARD_URL"] + "/api/v1/jobs/" + os.environ["JOBYARD_JOB_ID"]
def call(path, method, body):
    request = urllib.request.Request(
        url + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["JOBYARD_TOKEN"],
                 "Content-Type": "application/json"})
    return urllib.request.urlopen(request).status
print(call("/results/", "POST", {"progress": 100}))
print(call("/outcome/", "PUT", {"status": "completedWithIssues", "result": "Partial"}))
raise SystemExit(0)
"""


def test_a_job_reports_on_itself_and_its_outcome_decides_its_end(
    live_server: LiveServer,
) -> None:
    api = httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH)
    pkg = api.post(
        "/packages/",
        json={
            "name": "reporter",
            # braces are placeholders in a command template: `{{` and `}}` are literal ones
            "command": [sys.executable, "-c", REPORTER.replace("{", "{{").replace("}", "}}")],
            "positive_results": ["Done"],
            "negative_results": ["Partial"],
        },
    ).json()["data"]
    job = api.post("/jobs/", json={"package_id": pkg["id"]}).json()["data"]
    deadline = time.monotonic() + 20
    while (found := api.get(f"/jobs/{job['id']}/").json()["data"])["status"] in {
        "pending",
        "running",
    }:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    log = api.get(f"/jobs/{job['id']}/log/").json()["data"]["content"]
    results = api.get(f"/jobs/{job['id']}/results/").json()["data"]

    assert log == "200\n200\n", log
    assert found["status"] == "completed_with_issues"  # exit 0, but the outcome decides
    assert found["exit_code"] == 0
    assert [r["payload"] for r in results] == [{"progress": 100}]
