"""SQLite's doorbell: a launch committed by one process wakes the idle `jobyard worker`s of
the others on the same file at once, as NOTIFY does on PostgreSQL; what a worker hears is
not rung again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.services.runtime import open_runtime
from jobyard.settings import Settings
from jobyard.store.doorbell import Doorbell, DoorbellListener
from jobyard.worker.engine import Engine
from tests.api.helpers import launch, package, wait_for
from tests.conftest import AUTH

QUIET = 0.1  # long enough for a ring to be heard, were there one


@pytest.fixture
def database_file(tmp_path: Path) -> str:
    return str(tmp_path / "jobyard.db")


@pytest.fixture
def listener(database_file: str) -> Iterator[DoorbellListener]:
    ear = DoorbellListener(database_file)
    yield ear
    ear.close()


def test_one_ring_is_heard_by_every_listener_of_the_file(
    database_file: str, listener: DoorbellListener
) -> None:
    other = DoorbellListener(database_file)
    bell = Doorbell(database_file)
    bell.ring()

    assert listener.wait(5.0)
    assert other.wait(5.0)
    other.close()
    bell.close()


def test_without_a_ring_nothing_is_heard(database_file: str, listener: DoorbellListener) -> None:
    Doorbell(Path(database_file).with_name("another.db").as_posix()).ring()

    assert not listener.wait(QUIET)


def test_rings_that_came_together_are_heard_once(
    database_file: str, listener: DoorbellListener
) -> None:
    bell = Doorbell(database_file)
    for _ in range(3):
        bell.ring()

    assert listener.wait(5.0)
    assert not listener.wait(QUIET)
    bell.close()


def test_a_closed_listener_watches_anew(database_file: str, listener: DoorbellListener) -> None:
    bell = Doorbell(database_file)
    listener.close()
    assert not listener.wait(QUIET)  # watching again, and nothing rang since
    bell.ring()

    assert listener.wait(5.0)
    bell.close()


def test_the_doorbell_is_as_private_as_the_database(database_file: str) -> None:
    bell = Doorbell(database_file)
    bell.ring()

    assert Path(f"{database_file}.doorbell").stat().st_mode & 0o777 == 0o600
    bell.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_runtime_rings_for_new_work_but_not_for_what_it_heard(
    database_file: str, listener: DoorbellListener, settings: Settings
) -> None:
    rt = open_runtime(settings.with_overrides(database_url=f"sqlite:///{database_file}"))

    rt.wakeup.heard()  # another process's announcement, passed on to this one's workers
    assert not listener.wait(QUIET)
    rt.wakeup.notify()
    assert listener.wait(5.0)
    rt.db.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_launch_through_another_process_wakes_a_listening_worker(settings: Settings) -> None:
    """The API and the worker share only the file: the worker hears the launch (its wake-up
    moves, which only what it hears does) and runs the job."""
    worker_rt = open_runtime(settings)
    worker_rt.in_process_only = False  # as `jobyard worker` has it
    pool = Engine(worker_rt, slots=2)
    pool.start()
    try:
        with TestClient(create_app(settings.with_overrides(workers=0)), headers=AUTH) as api:
            package_id = package(api, name="quick", command=["true"])["id"]
            before = worker_rt.wakeup.mark()
            job = launch(api, package_id=package_id)
            _wait_until(lambda: worker_rt.wakeup.mark() != before, "the worker to hear it")
            assert wait_for(api, job["id"])["status"] == "completed"
    finally:
        pool.stop()
        worker_rt.db.dispose()


def _wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
