"""Requests while the database is out of reach (PostgreSQL behind a proxy a test can break):
503 with `Retry-After` in each API's own error shape, not 500; and served again once it is
back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings
from tests.chaos.proxy import Proxy
from tests.conftest import AUTH

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]


@pytest.fixture
def proxy(settings: Settings) -> Iterator[Proxy]:
    breakable = Proxy.for_url(settings.database_url)
    yield breakable
    breakable.close()


@pytest.fixture
def api(settings: Settings, proxy: Proxy) -> Iterator[TestClient]:
    """The API alone, its database connections through the proxy."""
    through = {**settings.__dict__, "database_url": proxy.url(settings.database_url)}
    app = create_app(Settings(**through | {"workers": 0}))
    with TestClient(app, headers=AUTH) as client:
        yield client


def _package(api: TestClient) -> str:
    response = api.post("/api/v1/packages/", json={"name": "p", "command": ["true"]})
    assert response.status_code == 200, response.text
    package_id: str = response.json()["data"]["id"]
    return package_id


def _unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body: dict[str, Any] = response.json()
    return body


def test_a_launch_while_the_database_is_out_of_reach_is_503_and_works_after(
    api: TestClient, proxy: Proxy
) -> None:
    package_id = _package(api)
    with proxy.down():
        started = time.monotonic()
        body = _unavailable(api.post("/api/v1/jobs/", json={"package_id": package_id}))
        assert time.monotonic() - started < 10  # at most the connect timeout, not a hang
    assert body["status"] == 503
    assert body["title"] == "Service Unavailable"
    assert body["error"] == "The database cannot serve this request just now; try again shortly."
    assert body["error"] == body["detail"]
    launched = api.post("/api/v1/jobs/", json={"package_id": package_id})
    assert launched.status_code == 200, launched.text
    assert api.get(f"/api/v1/jobs/{launched.json()['data']['id']}/").status_code == 200


def test_the_dialects_answer_503_in_their_own_shapes(api: TestClient, proxy: Proxy) -> None:
    with proxy.down():
        saymon = _unavailable(api.get("/node/api/jobs/1"))
        bigchange = _unavailable(api.get("/v1/jobs/1", headers={"Customer-Id": "1"}))
        bmc = api.get("/v1/job_runs.json", params={"token": AUTH["Authorization"][7:]})
    assert saymon["code"] == "ServiceUnavailable"
    assert (bigchange["status"], bigchange["title"]) == (503, "Service Unavailable")
    assert bmc.status_code == 503, bmc.text
    assert bmc.headers["Retry-After"] == "5"
    assert api.get("/v1/jobs/1", headers={"Customer-Id": "1"}).status_code == 404
