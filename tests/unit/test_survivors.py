"""What a dead worker's jobs left running is found and stopped, also when their pid was never
recorded (the worker died within a moment of starting them): by the run id in their
environment; never another deployment's job, known by its token. Real processes, each in a
session of its own as a job's is."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from jobyard.domain.models import RunProcess
from jobyard.worker import survivors


def _job(run_id: int, token: str = "") -> subprocess.Popen[bytes]:
    env = {"PATH": os.defpath, "JOBYARD_RUN_ID": str(run_id)}
    env |= {"JOBYARD_TOKEN": token} if token else {}
    return subprocess.Popen(["sh", "-c", "sleep 30 & wait"], env=env, start_new_session=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_run_token(token: str, token_hash: str) -> bool:
    """As the server's check, with a plain SHA-256 for its keyed hash."""
    return _digest(token) == token_hash


def _stop(survivors_: list[RunProcess]) -> list[int]:
    return survivors.stop_groups(survivors_, uids={os.getuid()}, is_run_token=_is_run_token)


def _started() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _jobs(*jobs: tuple[int, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Jobs of these (run id, token), their shells' sleeps started; killed after, if alive."""
    procs = [_job(run_id, token) for run_id, token in jobs]
    try:
        time.sleep(0.2)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(5)


def test_an_unrecorded_run_is_found_by_its_run_id_and_stopped_with_its_group() -> None:
    began = _started()
    with _jobs((4242, ""), (4243, "")) as (mine, other):
        assert _stop([RunProcess(4242, 0, began)]) == [4242]
        assert mine.wait(5) == -9
        assert other.poll() is None, "another run's process was killed"


def test_a_process_that_started_long_before_the_run_is_left_alone() -> None:
    with _jobs((4244, "")) as (proc,):
        later = datetime.fromtimestamp(time.time() + 60, UTC)  # a run started a minute on
        assert _stop([RunProcess(4244, 0, later)]) == []
        assert proc.poll() is None


def test_another_deployments_job_with_the_same_run_id_is_left_alone() -> None:
    """Two deployments on one host number their runs alike: the token tells them apart,
    whether the pid was recorded or not."""
    began = _started()
    with _jobs((4245, "jyj_mine"), (4245, "jyj_theirs")) as (mine, theirs):
        recorded_theirs = RunProcess(4245, theirs.pid, began, _digest("jyj_mine"))
        assert _stop([recorded_theirs]) == []
        assert _stop([RunProcess(4245, 0, began, _digest("jyj_mine"))]) == [4245]
        assert mine.wait(5) == -9
        assert theirs.poll() is None, "another deployment's job was killed"
