"""The SAYMON dialect over real HTTP, on both databases: the seed pages' examples run as
written (curl and Python `requests` with Basic `login:password`), then the rest of the
dialect (executing an operation, an object's job history) and its error shapes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import AUTH, LiveServer

LOGIN = "saymon-user"
PASSWORD = "secret-password-1"
VIEWER = "saymon-viewer"
JOB_KEYS = {
    "id",
    "description",
    "operation_id",
    "owner_id",
    "owner_type",
    "user_id",
    "process_meta",
    "timestamp",
    "results",
}
TIMEOUT = 20.0
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}

# Seed 000 (Add Custom Job Result), Bash: everything after the variable assignments, verbatim.
SEED_CURL = """curl -X PATCH $url -u $login:$password \\
    -H "Content-Type: application/json" \\
    -d @- <<EOF
{
    "custom property": "some value",
    "another custom property": "another value"
}
EOF
"""


class _Http(requests.Session):
    """requests with a timeout on every call (the seeds' own calls are left as written)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


http = _Http()


@dataclass
class World:
    url: str  # the server's base URL
    hostname: str  # what the seeds call saymon_hostname
    user_id: str
    viewer_id: str
    device_id: str
    package_id: str


def _native(server: LiveServer, method: str, path: str, body: Any = None) -> Any:
    response = http.request(method, f"{server.url}/api/v1/{path}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _world(server: LiveServer) -> World:
    """Through the native API as the admin: an operator and a viewer with passwords, a
    device (a SAYMON object) and a package printing Hello World! (a SAYMON operation)."""
    user = _native(
        server, "POST", "users/", {"login": LOGIN, "password": PASSWORD, "role": "operator"}
    )
    viewer = _native(
        server, "POST", "users/", {"login": VIEWER, "password": PASSWORD, "role": "viewer"}
    )
    device = _native(server, "POST", "devices/", {"name": "router-1"})
    package = _native(
        server, "POST", "packages/", {"name": "hello", "command": ["echo", "Hello World!"]}
    )
    return World(
        url=server.url,
        hostname=server.url.removeprefix("http://"),
        user_id=user["id"],
        viewer_id=viewer["id"],
        device_id=device["id"],
        package_id=package["id"],
    )


def _execute(world: World, body: Any = None, package_id: str = "") -> str:
    url = (
        f"{world.url}/node/api/objects/{world.device_id}"
        f"/operations/{package_id or world.package_id}/execute"
    )
    response = http.request("POST", url, json=body, auth=(LOGIN, PASSWORD))
    assert response.status_code == 200, response.text
    job_id = response.json()
    assert isinstance(job_id, str)
    assert job_id.isdigit()
    return job_id


def _wait(world: World, job_id: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        job = http.get(f"{world.url}/api/v1/jobs/{job_id}/", headers=AUTH).json()["data"]
        if job["status"] in TERMINAL:
            return
        assert time.monotonic() < deadline, f"job {job_id} is still {job['status']}"
        time.sleep(0.02)


def _get_job(world: World, job_id: str) -> dict[str, Any]:
    # Seed 001 (Get Job by ID), Python, as written (over http: the test server has no TLS).
    login, password, saymon_hostname = LOGIN, PASSWORD, world.hostname
    url = "http://" + saymon_hostname + "/node/api/jobs/" + job_id
    response = requests.request("GET", url, auth=(login, password))  # noqa: S113
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    job: dict[str, Any] = response.json()
    return job


def _assert_saymon_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def test_seed_python_examples_add_results_and_get_the_job(live_server: LiveServer) -> None:
    world = _world(live_server)
    started = int(time.time() * 1000)
    job_id = _execute(world)
    _wait(world, job_id)

    # Seed 000 (Add Custom Job Result), Python, as written: a pre-existing result first.
    login, password, saymon_hostname = LOGIN, PASSWORD, world.hostname
    url = "http://" + saymon_hostname + "/node/api/jobs/" + job_id + "/results"
    body: dict[str, Any] = {"pre-existing property": "pre-existing value"}
    first = requests.request("PATCH", url, json=body, auth=(login, password))  # noqa: S113
    body = {"custom property": "some value", "another custom property": "another value"}
    response = requests.request("PATCH", url, json=body, auth=(login, password))  # noqa: S113

    for answer in (first, response):
        assert answer.status_code == 200, answer.text
        assert answer.text == ""  # "The response body is empty."
    job = _get_job(world, job_id)
    assert set(job) == JOB_KEYS
    assert job["id"] == job_id
    assert job["description"] == {"stdout": "Hello World!\n", "exitCode": 0}
    assert job["operation_id"] == world.package_id
    assert job["owner_id"] == world.device_id
    assert job["owner_type"] == 1
    assert job["user_id"] == world.user_id
    assert job["process_meta"] is None
    assert isinstance(job["timestamp"], int)
    assert started - 5_000 <= job["timestamp"] <= int(time.time() * 1000)
    assert [r["payload"] for r in job["results"]] == [
        {"custom property": "some value", "another custom property": "another value"},
        {"pre-existing property": "pre-existing value"},
    ]
    for result in job["results"]:
        assert set(result) == {"payload", "by", "timestamp"}
        assert result["by"] == world.user_id
        assert isinstance(result["timestamp"], int)
        assert result["timestamp"] >= job["timestamp"]
    assert job["results"][0]["timestamp"] >= job["results"][1]["timestamp"]


def test_seed_curl_example_adds_a_result(live_server: LiveServer) -> None:
    if shutil.which("curl") is None:
        pytest.skip(reason="the seed's Bash example needs the curl binary, which is not installed")
    world = _world(live_server)
    job_id = _execute(world)
    variables = (
        f"login={LOGIN}\npassword={PASSWORD}\nsaymon_hostname={world.hostname}\n"
        f"job_id={job_id}\nurl=http://$saymon_hostname/node/api/jobs/$job_id/results\n\n"
    )

    ran = subprocess.run(
        ["bash", "-c", variables + SEED_CURL],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""  # the response body is empty
    _wait(world, job_id)
    job = _get_job(world, job_id)
    assert [r["payload"] for r in job["results"]] == [
        {"custom property": "some value", "another custom property": "another value"}
    ]
    assert job["results"][0]["by"] == world.user_id
    assert job["description"] == {"stdout": "Hello World!\n", "exitCode": 0}


def test_execute_operation_and_object_job_history(live_server: LiveServer) -> None:
    world = _world(live_server)
    auth = (LOGIN, PASSWORD)
    greeter = _native(
        live_server, "POST", "packages/", {"name": "greet", "command": ["echo", "hello {who}"]}
    )
    other = _native(live_server, "POST", "devices/", {"name": "router-2"})
    history = f"{world.url}/node/api/objects/{world.device_id}/jobs"
    assert http.get(history, auth=auth).json() == []

    first = _execute(world)
    second = _execute(world, {"who": "saymon"}, package_id=greeter["id"])
    _wait(world, first)
    _wait(world, second)
    listed = http.get(history, auth=auth)

    assert listed.status_code == 200, listed.text
    jobs = listed.json()
    assert [j["id"] for j in jobs] == [second, first]  # newest first
    assert all(set(j) == JOB_KEYS and j["owner_id"] == world.device_id for j in jobs)
    assert jobs[0]["description"] == {"stdout": "hello saymon\n", "exitCode": 0}
    assert jobs[0]["operation_id"] == greeter["id"]
    assert jobs[1]["description"]["stdout"] == "Hello World!\n"
    assert http.get(f"{world.url}/node/api/objects/{other['id']}/jobs", auth=auth).json() == []
    unknown_object = http.get(f"{world.url}/node/api/objects/999999/jobs", auth=auth)
    _assert_saymon_error(unknown_object, 404, "ResourceNotFound")

    execute = f"{world.url}/node/api/objects/{world.device_id}/operations"
    unknown_operation = http.post(f"{execute}/999999/execute", auth=auth)
    _assert_saymon_error(unknown_operation, 404, "ResourceNotFound")
    on_unknown_object = http.post(
        f"{world.url}/node/api/objects/999999/operations/{world.package_id}/execute", auth=auth
    )
    _assert_saymon_error(on_unknown_object, 404, "ResourceNotFound")
    bad_arguments = http.post(f"{execute}/{world.package_id}/execute", json={"n": 1}, auth=auth)
    _assert_saymon_error(bad_arguments, 400, "InvalidContent")
    assert [j["id"] for j in http.get(history, auth=auth).json()] == [second, first]

    # A job that has not run yet: no stdout, exitCode null; one launched without a device
    # override names no owner (no service says which device its package gave it).
    future = "9999-01-01T00:00:00Z"
    body = {"package_id": world.package_id, "device_id": world.device_id, "run_at": future}
    waiting = _native(live_server, "POST", "jobs/", body)
    unowned = _native(live_server, "POST", "jobs/", {"package_id": world.package_id})
    newest = http.get(history, auth=auth).json()
    assert [j["id"] for j in newest] == [waiting["id"], second, first]
    assert newest[0]["description"] == {"stdout": "", "exitCode": None}
    assert newest[0]["results"] == []
    assert (
        http.get(f"{world.url}/node/api/jobs/{unowned['id']}", auth=auth).json()["owner_id"] == ""
    )


def test_errors_permissions_and_the_api_token_parameter(live_server: LiveServer) -> None:
    world = _world(live_server)
    job_id = _execute(world)
    job_url = f"{world.url}/node/api/jobs/{job_id}"
    results_url = f"{job_url}/results"

    wrong = http.request("GET", job_url, auth=(LOGIN, "wrong-password"))
    _assert_saymon_error(wrong, 401, "InvalidCredentials")
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    anonymous = _assert_saymon_error(http.get(job_url), 401, "Unauthorized")
    assert json.loads(anonymous["message"]) == {"errorCode": 3, "message": "Not logged in."}
    bad_token = http.get(job_url, params={"api-token": "no-such-token"})
    refused = _assert_saymon_error(bad_token, 401, "Unauthorized")
    assert json.loads(refused["message"])["message"] == "Invalid API token."
    assert bad_token.headers["WWW-Authenticate"].startswith("Basic")

    unknown = http.get(f"{world.url}/node/api/jobs/999999", auth=(LOGIN, PASSWORD))
    _assert_saymon_error(unknown, 404, "ResourceNotFound")
    not_numeric = http.get(f"{world.url}/node/api/jobs/5f1150e0786952", auth=(LOGIN, PASSWORD))
    _assert_saymon_error(not_numeric, 404, "ResourceNotFound")
    unknown_results = http.patch(
        f"{world.url}/node/api/jobs/999999/results", json={"a": "b"}, auth=(LOGIN, PASSWORD)
    )
    _assert_saymon_error(unknown_results, 404, "ResourceNotFound")

    not_an_object = http.patch(results_url, json=["a"], auth=(LOGIN, PASSWORD))
    _assert_saymon_error(not_an_object, 400, "InvalidContent")
    not_json = http.patch(
        results_url,
        data="{not json",
        headers={"Content-Type": "application/json"},
        auth=(LOGIN, PASSWORD),
    )
    _assert_saymon_error(not_json, 400, "InvalidContent")

    viewer_patch = http.patch(results_url, json={"a": "b"}, auth=(VIEWER, PASSWORD))
    forbidden = _assert_saymon_error(viewer_patch, 403, "Forbidden")
    assert "jobs:write" in forbidden["message"]
    viewer_execute = http.post(
        f"{world.url}/node/api/objects/{world.device_id}/operations/{world.package_id}/execute",
        auth=(VIEWER, PASSWORD),
    )
    _assert_saymon_error(viewer_execute, 403, "Forbidden")
    assert http.get(job_url, auth=(VIEWER, PASSWORD)).status_code == 200

    token = _native(
        live_server,
        "POST",
        "tokens/",
        {"name": "saymon", "scopes": ["jobs:read", "jobs:write"], "user_id": world.user_id},
    )["token"]
    added = http.patch(results_url, params={"api-token": token}, json={"via": "api-token"})
    assert added.status_code == 200, added.text
    assert added.text == ""
    read = http.get(job_url, params={"api-token": token})
    assert read.status_code == 200, read.text
    assert read.json()["results"][0] == {
        "payload": {"via": "api-token"},
        "by": world.user_id,
        "timestamp": read.json()["results"][0]["timestamp"],
    }
    assert http.get(job_url, params={"api-token": token}).json()["id"] == job_id

    wrong_path = http.get(f"{world.url}/node/api/no-such-thing", auth=(LOGIN, PASSWORD))
    _assert_saymon_error(wrong_path, 404, "ResourceNotFound")
    wrong_method = http.delete(job_url, auth=(LOGIN, PASSWORD))
    _assert_saymon_error(wrong_method, 405, "MethodNotAllowed")
