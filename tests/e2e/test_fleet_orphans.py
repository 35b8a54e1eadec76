"""A job whose worker died lives on under init: before its run is retried on the same host,
it is stopped, so it never runs beside its retry (issue 17). Its worker and spawners killed
together, then a worker starting (or a live one's reaper); or only its spawner killed. Each
job holds a lock of its job's while it runs: a second copy that finds it taken says so."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobyard.settings import Settings
from tests.e2e.test_fleet import LEASE_SECONDS, TERMINAL, Workers, _package, _runs, _wait

# Kills jobyard processes, whose next start stops what their runs left on this host: alone.
pytestmark = pytest.mark.alone

MODES = ["as the server", "with job uids"]


def _script(marks: Path) -> list[str]:
    lock, pids, doubled = (
        f'"{marks}/$JOBYARD_JOB_ID.{suffix}"' for suffix in ("lock", "pids", "doubled")
    )
    # umask 0: each attempt may run as another uid, and writes to the same files
    return ["sh", "-c", f"umask 0; echo $$ >> {pids}; flock -n {lock} sleep 60 || touch {doubled}"]


@pytest.fixture
def marks() -> Iterator[Path]:
    """Where jobs leave their marks: outside the tests' private directories, since jobs with
    uids of their own write here too."""
    path = Path(tempfile.mkdtemp(prefix="jobyard-marks-"))
    path.chmod(0o1777)
    yield path
    for pids in path.glob("*.pids"):  # whatever a failed test left running
        for pid in pids.read_text().split():
            with contextlib.suppress(OSError):
                os.killpg(int(pid), signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def _mode_env(mode: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if mode == "as the server":
        return {}
    first, last = request.getfixturevalue("job_uid_range")
    job_user: str = request.getfixturevalue("job_user")
    return {"JOBYARD_RUN_AS": job_user, "JOBYARD_JOB_UIDS": f"{first}-{last}"}


def _pids(marks: Path, job_id: str) -> list[int]:
    path = marks / f"{job_id}.pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _one_job_running(api: TestClient, marks: Path, package_id: str) -> tuple[str, int]:
    response = api.post("/api/v1/jobs/", json={"package_id": package_id})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["data"]["id"]
    _wait(lambda: len(_pids(marks, job_id)) == 1, 30, "the job to start")
    return job_id, _pids(marks, job_id)[0]


def _retried_alone(api: TestClient, marks: Path, job_id: str, first_pid: int) -> None:
    """The job's second attempt started, with its first process gone, and no copy of it
    found the other running."""
    _wait(lambda: len(_pids(marks, job_id)) == 2, 8 * LEASE_SECONDS + 20, "the retry")
    time.sleep(0.5)  # a second copy finds the lock taken at once
    assert not (marks / f"{job_id}.doubled").exists(), "the job ran twice at once"
    assert not _alive(first_pid)
    api.post(f"/api/v1/jobs/{job_id}/cancel/")
    _wait(
        lambda: api.get(f"/api/v1/jobs/{job_id}/").json()["data"]["status"] in TERMINAL,
        30,
        "the end",
    )


def _kill_with_spawners(worker_pid: int) -> None:
    """SIGKILL a worker and its spawners at once, as an OOM kill or a host's kill -9 would."""
    for pid in [*_children(worker_pid), worker_pid]:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("after", ["a worker starts", "a live worker reaps"])
def test_a_dead_workers_job_is_stopped_before_its_retry(
    api: TestClient,
    workers: Workers,
    fleet_settings: Settings,
    marks: Path,
    request: pytest.FixtureRequest,
    mode: str,
    after: str,
) -> None:
    env = _mode_env(mode, request)
    package_id = _package(api, _script(marks), max_attempts=2)
    neighbour = workers.start(slots=1, **env) if after == "a live worker reaps" else None
    if neighbour is not None:  # busy, so that the job goes to the victim
        blocker = api.post("/api/v1/jobs/", json={"package_id": package_id}).json()["data"]["id"]
        _wait(lambda: len(_pids(marks, blocker)) == 1, 30, "the neighbour's job")
    victim = workers.start(slots=1, **env)
    job_id, first_pid = _one_job_running(api, marks, package_id)
    _wait(lambda: all(r.process_id for r in _runs(fleet_settings.database_url)), 10, "its pid")

    _kill_with_spawners(victim.pid)
    # The job lives on without its worker (checked at once: once the worker's lease lapses,
    # a live neighbour's reaper may stop it, which is the rest of the test).
    assert _alive(first_pid)
    victim.wait(10)
    if neighbour is None:
        workers.start(slots=1, **env)
    else:
        api.post(f"/api/v1/jobs/{blocker}/cancel/")  # the neighbour is free for the retry

    _retried_alone(api, marks, job_id, first_pid)


@pytest.mark.parametrize("mode", MODES)
def test_a_job_whose_spawner_died_is_stopped_before_its_retry(
    api: TestClient,
    workers: Workers,
    marks: Path,
    request: pytest.FixtureRequest,
    mode: str,
) -> None:
    package_id = _package(api, _script(marks), max_attempts=2)
    worker = workers.start(slots=1, **_mode_env(mode, request))
    job_id, first_pid = _one_job_running(api, marks, package_id)

    (spawner,) = _children(worker.pid)
    os.kill(spawner, signal.SIGKILL)

    _retried_alone(api, marks, job_id, first_pid)
    assert worker.poll() is None  # the worker goes on, with a new spawner
