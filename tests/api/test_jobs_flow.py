"""A package is created, a job launched from it runs as a real child process, and its output
is readable: the foundation's whole path, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import create, launch, package, wait_for


def test_echo_job_completes_with_its_output(client: TestClient) -> None:
    config = create(client, "configs", {"name": "cfg", "testvars": {"who": "world"}})
    pkg = package(client, config_id=config["id"])

    job = launch(client, package_id=pkg["id"])

    assert job["status"] == "pending"
    assert job["active"] is False
    assert job["package_name"] == "hello"
    done = wait_for(client, job["id"])
    assert done["status"] == "completed"
    assert done["exit_code"] == 0
    assert done["result_id"] is not None
    log = client.get(f"/api/v1/jobs/{job['id']}/log/").json()["data"]
    assert log["content"] == "hello world\n"
    assert log["next_offset"] == len("hello world\n")
    assert log["complete"] is True


def test_failing_command_ends_failed_with_its_exit_code(client: TestClient) -> None:
    pkg = package(client, command=["sh", "-c", "echo oops >&2; exit 3"])

    done = wait_for(client, launch(client, package_id=pkg["id"])["id"])

    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    log = client.get(f"/api/v1/jobs/{done['id']}/log/?stream=stderr").json()["data"]
    assert log["content"] == "oops\n"
