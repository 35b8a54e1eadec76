"""What a dead worker's jobs left running is found and stopped, also when their pid was never
recorded (the worker died within a moment of starting them): by the run id in their
environment. Real processes, each in a session of its own as a job's is."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime

from jobyard.domain.models import RunProcess
from jobyard.worker import survivors


def _job(run_id: int) -> subprocess.Popen[bytes]:
    env = {"PATH": os.defpath, "JOBYARD_RUN_ID": str(run_id)}
    return subprocess.Popen(["sh", "-c", "sleep 30 & wait"], env=env, start_new_session=True)


def _started() -> datetime:
    return datetime.now(UTC)


def test_an_unrecorded_run_is_found_by_its_run_id_and_stopped_with_its_group() -> None:
    began = _started()
    mine, other = _job(4242), _job(4243)
    try:
        time.sleep(0.2)  # both shells have started their sleeps
        stopped = survivors.stop_groups([RunProcess(4242, 0, began)], uids={os.getuid()})
        assert stopped == [4242]
        assert mine.wait(5) == -9
        assert other.poll() is None, "another run's process was killed"
    finally:
        for proc in (mine, other):
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(5)


def test_a_process_that_started_long_before_the_run_is_left_alone() -> None:
    proc = _job(4244)
    try:
        time.sleep(0.2)
        later = datetime.fromtimestamp(time.time() + 60, UTC)  # a run started a minute on
        assert survivors.stop_groups([RunProcess(4244, 0, later)], uids={os.getuid()}) == []
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(5)
