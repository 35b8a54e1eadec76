"""A read by key of a table another session holds (a migration at a newer server's start
holds tables so while the others serve), on a PostgreSQL on this host, whose reads by key
run on the event loop: the first such read holds the event loop up for as long as it waits
(its 503 comes at the lock timeout); the reads after it go to the threadpool, and hold no
one else up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from jobyard.settings import Settings
from jobyard.store.db import normalise_url
from tests.conftest import AUTH, LiveServer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

LOCK_TIMEOUT = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(db_lock_timeout_seconds=LOCK_TIMEOUT)


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=60) as client:
        yield client


def _created(api: httpx.Client, resource: str, body: dict[str, Any]) -> str:
    response = api.post(f"/api/v1/{resource}/", json=body)
    assert response.status_code == 200, response.text
    created: str = response.json()["data"]["id"]
    return created


def _get(url: str) -> httpx.Response:
    with httpx.Client(headers=AUTH, timeout=60) as client:
        return client.get(url)


def test_a_locked_table_holds_the_event_loop_up_once(
    api: httpx.Client, live_server: LiveServer, settings: Settings
) -> None:
    package = _created(api, "packages", {"name": "p", "command": ["true"]})
    url = f"{live_server.url}/api/v1/packages/{package}/"
    holder = sa.create_engine(normalise_url(settings.database_url))
    try:
        with holder.begin() as conn:
            conn.execute(sa.text("LOCK TABLE packages IN ACCESS EXCLUSIVE MODE"))
            first = api.get(url)  # waits for the lock on the event loop
            with ThreadPoolExecutor(1) as other:
                second = other.submit(_get, url)  # waits for it in a thread
                time.sleep(LOCK_TIMEOUT / 4)
                started = time.monotonic()
                health = api.get("/healthz")
                answered_in = time.monotonic() - started
                assert second.result().status_code == 503
    finally:
        holder.dispose()
    assert first.status_code == 503, first.text
    assert first.headers["Retry-After"]
    assert health.status_code == 200
    assert answered_in < LOCK_TIMEOUT / 2
    assert api.get(url).status_code == 200
