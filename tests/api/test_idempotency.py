"""`Idempotency-Key` on launches: the same key and request within 24 h answer the first
launch's jobs and launch nothing, even sent at once; another request under the key is a 422
that says so; keys are per customer; bulk launches and the dialects' create calls too."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jobyard.domain.idempotency import Idempotency
from jobyard.services import accounts, authentication, catalog, jobs
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from tests.api.helpers import create, package
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

API = "/api/v1"
LATER = "9999-01-01T00:00:00Z"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def job_count(client: TestClient) -> int:
    total: int = client.get(f"{API}/jobs/?limit=1").json()["links"]["total"]
    return total


def test_a_repeated_key_answers_the_same_job_and_launches_nothing(client: TestClient) -> None:
    hello = package(client, command=["true"])
    body = {"package_id": hello["id"], "run_at": LATER, "options": {"tags": ["a", "b"]}}
    first = client.post(f"{API}/jobs/", json=body, headers=keyed("k-1"))
    # The same request, its keys in another order and spaced otherwise.
    package_id = hello["id"]
    same = (
        f'{{"options": {{"tags": ["a", "b"]}},  "run_at": "{LATER}", "package_id": "{package_id}"}}'
    )
    again = client.post(
        f"{API}/jobs/", content=same, headers=keyed("k-1") | {"Content-Type": "application/json"}
    )

    assert first.status_code == again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_count(client) == 1

    other = client.post(f"{API}/jobs/", json=body | {"priority": 5}, headers=keyed("k-1"))
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "another request" in other.json()["detail"]
    assert other.json()["errors"] == {"Idempotency-Key": [other.json()["detail"]]}
    assert job_count(client) == 1

    fresh = client.post(f"{API}/jobs/", json=body, headers=keyed("k-2"))
    assert fresh.json()["data"]["id"] != first.json()["data"]["id"]
    unkeyed = [client.post(f"{API}/jobs/", json=body).json()["data"]["id"] for _ in range(2)]
    assert len(set(unkeyed)) == 2
    assert job_count(client) == 4


def test_a_refused_launch_takes_no_key_and_a_bad_key_is_a_400(client: TestClient) -> None:
    hello = package(client, command=["true"])
    refused = client.post(f"{API}/jobs/", json={"package_id": "999"}, headers=keyed("k"))
    assert refused.status_code == 404
    taken = client.post(f"{API}/jobs/", json={"package_id": hello["id"]}, headers=keyed("k"))
    assert taken.status_code == 200
    for bad in ("x" * 256, "tab\there", " "):
        answer = client.post(f"{API}/jobs/", json={"package_id": hello["id"]}, headers=keyed(bad))
        assert answer.status_code == 400, bad
        assert "Idempotency-Key" in answer.json()["detail"]


def test_keys_are_per_customer(client: TestClient) -> None:
    acme = create(client, "tenants", {"name": "acme"})["id"]
    mine = package(client, command=["true"])
    theirs = client.post(
        f"{API}/packages/", json={"name": "p", "command": ["true"]}, headers={"Customer-Id": acme}
    ).json()["data"]
    first = client.post(f"{API}/jobs/", json={"package_id": mine["id"]}, headers=keyed("shared"))
    other = client.post(
        f"{API}/jobs/",
        json={"package_id": theirs["id"]},
        headers=keyed("shared") | {"Customer-Id": acme},
    )
    assert first.status_code == other.status_code == 200
    assert first.json()["data"]["id"] != other.json()["data"]["id"]


def test_a_repeated_bulk_launch_answers_the_same_jobs(client: TestClient) -> None:
    hello = package(client, command=["true"])
    body = {"jobs": [{"package_id": hello["id"], "run_at": LATER}] * 3}
    first = client.post(f"{API}/jobs/?bulk=launch", json=body, headers=keyed("b"))
    again = client.post(f"{API}/jobs/?bulk=launch", json=body, headers=keyed("b"))
    ids = [j["id"] for j in first.json()["data"]]
    assert [j["id"] for j in again.json()["data"]] == ids
    assert len(set(ids)) == 3
    assert again.headers["Idempotent-Replayed"] == "true"
    by_filter = {"fields": {"run_at": LATER}}
    selected = f"{API}/jobs/?bulk=launch&filter=name={hello['name']}"
    one = client.post(selected, json=by_filter, headers=keyed("f")).json()["data"]
    assert client.post(selected, json=by_filter, headers=keyed("f")).json()["data"] == one
    # The same body with another query (another selection of packages) is another request.
    elsewhere = f"{API}/jobs/?bulk=launch&filter=name=other"
    assert client.post(elsewhere, json=by_filter, headers=keyed("f")).status_code == 422
    assert job_count(client) == 4


def test_parallel_retries_with_one_key_launch_one_job(live_server: LiveServer) -> None:
    with httpx.Client(base_url=f"{live_server.url}{API}", headers=AUTH, timeout=30) as api:
        hello = api.post("/packages/", json={"name": "p", "command": ["true"]}).json()["data"]
        body = {"package_id": hello["id"], "run_at": LATER}

        def launch(_: int) -> httpx.Response:
            return api.post("/jobs/", json=body, headers=keyed("retry-storm"))

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(launch, range(16)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["data"]["id"] for a in answers}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 15
        assert api.get("/jobs/?limit=1").json()["links"]["total"] == 1


def test_the_dialects_create_calls_take_a_key(client: TestClient) -> None:
    hello = package(client, command=["true"])
    device = create(client, "devices", {"name": "d"})
    execute = f"/node/api/objects/{device['id']}/operations/{hello['id']}/execute"
    saymon = [client.post(execute, json={"who": "x"}, headers=keyed("s")) for _ in range(2)]
    assert saymon[0].json() == saymon[1].json()
    assert saymon[1].headers["Idempotent-Replayed"] == "true"
    assert client.post(execute, json={"who": "y"}, headers=keyed("s")).status_code == 422

    bigchange = {"Customer-Id": "1"} | keyed("c")
    created = [
        client.post("/v1/jobs", json={"typeId": int(hello["id"])}, headers=bigchange)
        for _ in range(2)
    ]
    assert [c.status_code for c in created] == [201, 201]
    assert created[0].json()["id"] == created[1].json()["id"]
    other = client.post(
        "/v1/jobs", json={"typeId": int(hello["id"]), "reference": "r"}, headers=bigchange
    )
    assert other.status_code == 422
    assert job_count(client) == 2


@pytest.fixture
def admin_runtime(runtime: Runtime) -> Runtime:
    accounts.bootstrap_admin(runtime)
    return runtime


def test_a_key_older_than_a_day_launches_anew(admin_runtime: Runtime) -> None:
    rt = admin_runtime
    admin = authentication.check_token(rt, ADMIN_TOKEN).principal
    made = catalog.create_package(rt, actor=admin, values={"name": "p", "command": ["true"]})
    key = Idempotency("old", "f" * 64)

    def launch() -> jobs.KeyedLaunch:
        plan = lambda _conn: [jobs.LaunchRequest(package_id=made.id)]  # noqa: E731
        return jobs.launch_keyed(rt, actor=admin, idempotency=key, plan=plan)

    first = launch()
    assert launch().jobs[0].id == first.jobs[0].id
    with rt.db.transaction() as conn:
        conn.execute(
            sa.update(tables.idempotency_keys).values(
                created=datetime.now(UTC) - timedelta(hours=24, seconds=1)
            )
        )
    later = launch()
    assert not later.replayed
    assert later.jobs[0].id != first.jobs[0].id
