"""`jobyard worker` processes dispatch webhooks too: with an API that does not (started with
JOBYARD_SCHEDULER=false), the events of the jobs two workers run reach the receiver, each
once (SQLite and PostgreSQL)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings
from tests.api.helpers import create, launch, package, wait_for
from tests.conftest import AUTH
from tests.e2e.test_fleet import Workers
from tests.webhooks.conftest import LOOPBACK
from tests.webhooks.receiver import Receiver, documented_verify

JOBS = 6


@pytest.fixture
def quiet_api(fleet_settings: Settings) -> Iterator[TestClient]:
    """The API alone, without a dispatcher (nor workers)."""
    settings = fleet_settings.model_copy(
        update={"scheduler": False, "webhook_allow_networks": LOOPBACK}
    )
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


def test_workers_deliver_each_event_once(
    quiet_api: TestClient, workers: Workers, receiver: Receiver
) -> None:
    made = create(quiet_api, "webhooks", {"url": receiver.url})
    dispatching = {
        "JOBYARD_WEBHOOK_ALLOW_NETWORKS": LOOPBACK,
        "JOBYARD_WEBHOOK_POLL_SECONDS": "0.05",
    }
    procs = [workers.start(slots=2, **dispatching) for _ in range(2)]
    hello = package(quiet_api, command=["true"])
    jobs = [launch(quiet_api, package_id=hello["id"]) for _ in range(JOBS)]
    for job in jobs:
        wait_for(quiet_api, job["id"], timeout=60)

    got = receiver.wait_for(lambda found: len(found) >= JOBS, timeout=30)
    verify = documented_verify()
    assert all(verify(made["secret"], r.headers["jobyard-signature"], r.body) for r in got)
    assert sorted(r.json["job_id"] for r in got) == sorted(j["id"] for j in jobs)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert len(receiver.snapshot()) == JOBS  # none twice
