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


def test_a_bulk_launch_answers_each_job_as_it_reads_back(client: TestClient) -> None:
    """Ids follow the order given (batched inserts), and the answer, built without reading
    the jobs back, equals what a read gives, offsets and all."""
    config = create(client, "configs", {"name": "cfg", "testvars": {"who": "world"}})
    pkg = package(client, config_id=config["id"])
    later = "9999-01-01T02:00:00+02:00"
    jobs = [
        {
            "package_id": pkg["id"],
            "run_at": later,
            "priority": n % 7,
            "context": {"n": n},
            "options": {"tags": [f"t{n}"], "extra_cli_args": f"-testvar who=w{n}"},
        }
        for n in range(1500)
    ]
    response = client.post("/api/v1/jobs/", params={"bulk": "launch"}, json={"jobs": jobs})
    assert response.status_code == 200, response.text
    launched = response.json()["data"]
    assert [j["context"] for j in launched] == [{"n": n} for n in range(1500)]
    assert len({j["id"] for j in launched}) == 1500
    for answered in launched[:3] + launched[-3:]:
        read = client.get(f"/api/v1/jobs/{answered['id']}/").json()["data"]
        assert read == answered
        assert answered["run_at"] == "9999-01-01T00:00:00+00:00"


def test_a_bulk_launch_of_interleaved_repeats_gives_each_job_its_own_values(
    client: TestClient,
) -> None:
    """Items repeat out of order (packages, devices and tags in turn): each job is planned
    once per distinct item, and answered and stored with its own item's values."""
    packages = [package(client, name=f"p{n}", command=["true"]) for n in range(3)]
    devices = [create(client, "devices", {"name": f"d{n}"}) for n in range(2)]
    tag_sets: list[list[str]] = [["nightly"], [], ["smoke", "fast"], ["nightly"]]
    items = [
        {
            "package_id": packages[n % 3]["id"],
            "device_id": devices[n % 2]["id"],
            "run_at": "9999-01-01T00:00:00Z",
            "options": {"tags": tag_sets[n % 4]},
        }
        for n in range(60)
    ]
    response = client.post("/api/v1/jobs/", params={"bulk": "launch"}, json={"jobs": items})
    assert response.status_code == 200, response.text
    launched = response.json()["data"]
    assert len({j["id"] for j in launched}) == 60
    for answered, item in zip(launched, items, strict=True):
        wanted = (item["package_id"], item["device_id"], item["options"]["tags"])
        assert (
            answered["package_id"],
            answered["device_id"],
            answered["options"]["tags"],
        ) == wanted
    for answered in launched[:7]:
        assert client.get(f"/api/v1/jobs/{answered['id']}/").json()["data"] == answered


def test_a_bulk_launch_of_equal_jobs_gives_each_its_own_id_and_keeps_each_context(
    client: TestClient,
) -> None:
    """Runs of equal elements are planned and answered once, but each job is its own, and
    contexts equal only in Python (1, 1.0, true) stay as given."""
    pkg = package(client, command=["true"])
    later = "9999-01-01T00:00:00Z"
    same = {"package_id": pkg["id"], "run_at": later, "context": {"k": 1}}
    contexts = [{"k": 1}, {"k": 1}, {"k": 1.0}, {"k": True}, {"k": True}, {"k": 1}]
    jobs = [same | {"context": context} for context in contexts]
    response = client.post("/api/v1/jobs/", params={"bulk": "launch"}, json={"jobs": jobs})
    assert response.status_code == 200, response.text
    launched = response.json()["data"]
    assert len({j["id"] for j in launched}) == len(contexts)
    for answered, context in zip(launched, contexts, strict=True):
        read = client.get(f"/api/v1/jobs/{answered['id']}/").json()["data"]
        assert read == answered
        assert repr(answered["context"]["k"]) == repr(context["k"])
