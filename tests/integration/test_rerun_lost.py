"""A package says whether a run lost with its worker is retried: by default it is (at least
once), and `rerun_lost: false` (never run twice) ends its job `lost` instead."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.services import execution, worker_registry
from jobyard.services.runtime import open_runtime
from jobyard.settings import Settings
from tests.api.helpers import launch, package
from tests.conftest import AUTH


@pytest.mark.parametrize(
    ("rerun_lost", "job_status", "second_attempt"),
    [(None, "pending", True), (True, "pending", True), (False, "lost", False)],
)
def test_a_lost_run_is_retried_unless_the_package_says_never_twice(
    settings: Settings, rerun_lost: bool | None, job_status: str, second_attempt: bool
) -> None:
    short = Settings(**{**settings.__dict__, "lease_seconds": 0.2, "workers": 0})
    with TestClient(create_app(short), headers=AUTH) as client:
        fields = {} if rerun_lost is None else {"rerun_lost": rerun_lost}
        pkg = package(client, command=["true"], max_attempts=3, **fields)
        assert pkg["rerun_lost"] is (rerun_lost is not False)
        job = launch(client, package_id=pkg["id"])
    rt = open_runtime(short)
    gone = worker_registry.register_worker(rt, slots=1)
    assert execution.claim_job(rt, worker=gone) is not None
    time.sleep(0.4)  # the worker stops renewing: its lease lapses

    assert execution.reap_expired(rt) == 1
    again = execution.claim_job(rt, worker=worker_registry.register_worker(rt, slots=1))
    rt.db.dispose()
    with TestClient(create_app(short), headers=AUTH) as client:
        after = client.get(f"/api/v1/jobs/{job['id']}/").json()["data"]

    assert (again is not None) is second_attempt
    assert after["status"] == ("running" if second_attempt else job_status)


def test_rerun_lost_must_be_a_boolean(settings: Settings) -> None:
    with TestClient(create_app(Settings(**{**settings.__dict__, "workers": 0})), headers=AUTH) as c:
        answer = c.post("/api/v1/packages/", json={"name": "p", "rerun_lost": "no"})
    assert answer.status_code == 400
