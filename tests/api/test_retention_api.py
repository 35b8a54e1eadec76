"""`/api/v1/retention/` over HTTP: a customer's admins read and set its retention, see a dry
run of what would go, give packages their own; bad values are 400s, operators get 403."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.api.helpers import create, package

API = "/api/v1"


def test_a_customer_sets_its_retention_and_sees_the_dry_run(client: TestClient) -> None:
    assert client.get(f"{API}/retention/").json()["data"] == {
        "keep_days": None,
        "keep_last": None,
        "output_days": None,
    }
    body = {"keep_days": 30, "keep_last": 100, "output_days": 7}
    assert client.put(f"{API}/retention/", json=body).json()["data"] == body
    assert client.get(f"{API}/retention/").json()["data"] == body
    own = package(client, "kept", command=["true"], keep_last=5, output_days=1)
    assert (own["keep_days"], own["keep_last"], own["output_days"]) == (None, 5, 1)

    dry = client.get(f"{API}/retention/preview/").json()["data"]
    assert dry == {"jobs": 0, "output_chunks": 0, "packages": []}
    events = client.get(f"{API}/events/?filter=action=retention.set").json()["data"]
    assert events[0]["detail"] == body

    for bad in ({"keep_days": 0}, {"output_days": -1}, {"keep_last": "x"}, {"forever": 1}):
        answer = client.put(f"{API}/retention/", json=bad)
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.post(f"{API}/packages/", json={"name": "z", "keep_days": 0}).status_code == 400


def test_only_admins_see_or_set_retention(client: TestClient) -> None:
    create(client, "users", {"login": "op", "password": "long-enough-pw", "role": "operator"})
    operator = {"Authorization": "Basic " + base64.b64encode(b"op:long-enough-pw").decode()}
    for method, path in (
        ("GET", "/retention/"),
        ("PUT", "/retention/"),
        ("GET", "/retention/preview/"),
    ):
        answer = client.request(method, f"{API}{path}", json={}, headers=operator)
        assert answer.status_code == 403, path
        assert "admin" in answer.json()["detail"]
