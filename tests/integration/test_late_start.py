"""A start that leaves the engine late: the engine queues a claimed job's start, and the
command goes to the spawner at the engine's next step. A worker frozen in between (SIGSTOP,
a stalled host) sends it after the job's lease may have lapsed and another worker's reaper
may have run the job again: the spawner refuses it, and the engine hands the run back.

These drive the engine's `Starter` with a real spawner, a real child (or none) and a real
SQLite database for the output, holding the start up as a frozen engine would."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.domain.models import ClaimedJob
from jobyard.domain.run_end import NO_PROCESS, ProcessEnd
from jobyard.domain.statuses import JobStatus
from jobyard.services import execution
from jobyard.services.execution import Work
from jobyard.services.runtime import Runtime
from jobyard.store.queue import Claim
from jobyard.worker import confinement
from jobyard.worker.output import Backoff, OutputRecorder
from jobyard.worker.remote import RemoteSupervisor
from jobyard.worker.starting import Running, Starter, late_to_start, start_by

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.timeout(60),
]

LEASE_SECONDS = 1.0


@pytest.fixture
def starter(runtime: Runtime) -> Iterator[tuple[Starter, RemoteSupervisor]]:
    settings = runtime.settings.model_copy(update={"lease_seconds": LEASE_SECONDS})
    confined = confinement.prepare(settings, slots=2)
    supervisor = RemoteSupervisor(poll_interval=0.05)
    yield Starter(confined, supervisor, settings), supervisor
    supervisor.close()
    confined.release()


def _running(runtime: Runtime, argv: list[str], *, run_id: int) -> Running:
    job = ClaimedJob(
        id=run_id,
        status=JobStatus.RUNNING,
        package_id=1,
        user_id=1,
        argv=tuple(argv),
        env={},
        timeout_seconds=None,
        interface_names=(),
        attempts=1,
    )
    # Claimed now, with a whole lease: its start-by is half a lease away.
    work = Work(Claim(job, run_id, 1), "token", time.time() + LEASE_SECONDS, worker_id=1)
    spool = runtime.settings.data_dir / "spool"
    return Running(work, OutputRecorder(runtime, run_id=run_id, backoff=Backoff(), spool_dir=spool))


def _start_all(
    starter: tuple[Starter, RemoteSupervisor], runs: list[Running], *, frozen: float
) -> dict[int, ProcessEnd]:
    """Start `runs`, wait `frozen` seconds as a frozen engine would, then let the commands go
    and step until each has ended."""
    start, supervisor = starter
    ended: dict[int, ProcessEnd] = {}
    for running in runs:
        start.start(running, lambda r, end: ended.__setitem__(r.run_id, end))
    time.sleep(frozen)
    deadline = time.monotonic() + 20
    while len(ended) < len(runs):
        assert time.monotonic() < deadline, "timed out"
        supervisor.step(0.05)
    return ended


def test_a_start_sent_past_its_start_by_is_handed_back_and_nothing_runs(
    runtime: Runtime, starter: tuple[Starter, RemoteSupervisor], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    running = _running(runtime, ["touch", str(marker)], run_id=1)
    assert start_by(running.work, lease_seconds=LEASE_SECONDS) < time.time() + LEASE_SECONDS
    ended = _start_all(starter, [running], frozen=LEASE_SECONDS * 0.7)
    assert ended == {1: NO_PROCESS}
    assert running.handing_back
    assert running.hand_back_reason == execution.LATE_TO_START
    assert running.pid == 0
    assert not marker.exists()


def test_a_start_in_time_runs_and_is_not_handed_back(
    runtime: Runtime, starter: tuple[Starter, RemoteSupervisor], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    running = _running(runtime, ["touch", str(marker)], run_id=2)
    ended = _start_all(starter, [running], frozen=0)
    assert ended[2].exit_code == 0
    assert running.pid > 0
    assert not running.handing_back
    assert marker.exists()


def test_the_turns_check_and_the_spawners_use_the_same_start_by(runtime: Runtime) -> None:
    fresh = _running(runtime, ["true"], run_id=3)
    stale = dataclasses.replace(
        _running(runtime, ["true"], run_id=4).work,
        lease_until=time.time() + LEASE_SECONDS * 0.4,  # less than half of it left
    )
    late = late_to_start([fresh.work, stale], lease_seconds=LEASE_SECONDS)
    assert late == {4}
