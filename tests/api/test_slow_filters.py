"""Filters cannot stall the server (issue 16, D2), on both databases, over real HTTP.

The probe's filters (`status~(` + `.*` x22 or x32 + `)X`) froze every thread of the
server for 5.9 s and 44.5 s while Python's `re` backtracked; a running job lost its lease.
Now they answer at once, /healthz answers meanwhile and the job keeps its lease. A pattern
PostgreSQL's own engine takes seconds over is cut short by the time limit: 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobyard.settings import Settings
from tests.conftest import AUTH, LiveServer

JOBS = "/api/v1/jobs/"
LEASE = 1.5  # a stall longer than this loses the running job's lease
TIME_LIMIT = 0.5
PROBLEM_KEYS = {"error", "type", "title", "status", "detail"}
# PostgreSQL takes about 2 s over 60 characters with this (RE2 a millisecond).
SLOW_ON_POSTGRES = "(.*){1,250}(.*){1,250}(.*){1,250}X"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(lease_seconds=LEASE, query_timeout_seconds=TIME_LIMIT)


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=60) as client:
        yield client


def create(api: httpx.Client, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/api/v1/{resource}/", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def status_of(api: httpx.Client, job_id: str) -> str:
    status: str = api.get(f"{JOBS}{job_id}/").json()["data"]["status"]
    return status


def wait_until(api: httpx.Client, job_id: str, statuses: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while (status := status_of(api, job_id)) not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} is still {status}"
        time.sleep(0.05)
    return status


def completed_job(api: httpx.Client, name: str) -> str:
    pkg = create(api, "packages", {"name": name, "command": ["true"]})
    job_id = str(create(api, "jobs", {"package_id": pkg["id"]})["id"])
    assert wait_until(api, job_id, {"completed"}) == "completed"
    return job_id


def running_job(api: httpx.Client) -> str:
    """A job that runs for a few leases: it ends `completed` only if its lease holds."""
    pkg = create(api, "packages", {"name": "sleepy", "command": ["sleep", "3"]})
    job_id = str(create(api, "jobs", {"package_id": pkg["id"]})["id"])
    wait_until(api, job_id, {"running"})
    return job_id


def while_healthz(api: httpx.Client, params: list[tuple[str, str]]) -> tuple[Any, float, float]:
    """The list's answer and how long it took, and the slowest /healthz meanwhile."""
    answer: dict[str, Any] = {}

    def slow_request() -> None:
        started = time.monotonic()
        answer["response"] = api.get(JOBS, params=params)
        answer["took"] = time.monotonic() - started

    thread = threading.Thread(target=slow_request)
    thread.start()
    slowest = 0.0
    while thread.is_alive():
        started = time.monotonic()
        assert api.get("/healthz").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.02)
    thread.join()
    return answer["response"], answer["took"], slowest


@pytest.mark.parametrize("dots", [22, 32])
def test_the_probes_filter_answers_at_once_and_the_lease_holds(
    api: httpx.Client, dots: int
) -> None:
    done = completed_job(api, "quick")
    running = running_job(api)
    pattern = "status~(" + ".*" * dots + ")X"
    assert dots != 22 or len(pattern) == 54  # the probe's short one

    response, took, slowest_healthz = while_healthz(
        api, [("filter", f"id={done}"), ("filter", pattern)]
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"] == []  # "completed" has no X
    assert took < 1.0
    assert slowest_healthz < 0.5
    assert wait_until(api, running, {"completed", "lost", "failed"}) == "completed"


def test_the_probes_pattern_still_matches_what_it_should(api: httpx.Client) -> None:
    done = completed_job(api, "quick")
    response = api.get(JOBS, params={"filter": "status~(" + ".*" * 32 + ")ted$"})
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["data"]] == [done]
    case_blind = api.get(JOBS, params={"filter": "status~*^COMP(" + ".*" * 32 + ")D$"})
    assert [item["id"] for item in case_blind.json()["data"]] == [done]


def test_a_pattern_the_database_runs_slowly_is_cut_short(
    api: httpx.Client, database_url: str
) -> None:
    """PostgreSQL matches in the database: its time limit answers 503 (with Retry-After)
    while /healthz and the running job go on. SQLite's RE2 answers at once."""
    pkg = create(api, "packages", {"name": "ab" * 30, "command": ["true"]})
    create(api, "jobs", {"package_id": pkg["id"], "run_at": "9999-01-01T00:00:00Z"})
    running = running_job(api)

    response, took, slowest_healthz = while_healthz(
        api, [("filter", f"package_name~{SLOW_ON_POSTGRES}")]
    )

    if database_url.startswith("sqlite"):
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []
    else:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body.keys() >= PROBLEM_KEYS
        assert body["status"] == 503
        assert body["error"] == body["detail"]
        assert "took longer than the server allows" in body["error"]
        assert int(response.headers["Retry-After"]) > 0
    assert took < TIME_LIMIT + 1.0
    assert slowest_healthz < 0.5
    assert wait_until(api, running, {"completed", "lost", "failed"}) == "completed"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("a" * 257, "257 characters long, at most 256 are allowed"),
        ("(a)\\1", "RE2 syntax: no backreferences or lookaround"),
        ("a(?=b)", "RE2 syntax: no backreferences or lookaround"),
        ("(?<!a)b", "RE2 syntax: no backreferences or lookaround"),
        ("\\pL{1000}", "pattern too large"),
    ],
)
def test_a_pattern_re2_refuses_is_400_naming_the_filter(
    api: httpx.Client, pattern: str, words: str
) -> None:
    for op in ("~", "!~", "~*", "!~*"):
        response = api.get(JOBS, params={"filter": f"package_name{op}{pattern}"})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        message = response.json()["error"]
        assert message.startswith("invalid regular expression"), message
        assert f'in filter "package_name{op}' in message
        assert words in message


def test_a_pattern_at_the_cap_is_taken(api: httpx.Client) -> None:
    response = api.get(JOBS, params={"filter": "package_name~" + "a" * 256})
    assert response.status_code == 200, response.text
