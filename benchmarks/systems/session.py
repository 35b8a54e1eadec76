"""One peer with `slots` slots, driven over a pipe by the bench (`benchmarks.systems.peer`):
`python -m benchmarks.systems.session MODULE VARIANT SLOTS` in the peer's virtualenv starts
the workers, warms them up and answers one JSON line per request line:

* `{"burst": "single" | "bulk", "jobs": n}` → `{"began": t, "results": [...]}`: `began` is
  this client's clock just before the first enqueue; `results` what each job recorded;
* `{"idle": n}` → `{"starts": [...]}`: n jobs one at a time, each enqueue→in-job start (s).

End of input stops the workers. Standard library and the peer's library only."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

WARM_UP_JOBS = 20


def main() -> None:
    module_name, variant, slots = sys.argv[1], sys.argv[2], int(sys.argv[3])
    peer = importlib.import_module(f"benchmarks.systems.{module_name}")
    peer.prepare()
    logs = Path(tempfile.mkdtemp(prefix=f"jobyard-bench-{module_name}-"))
    workers = [_start(command, logs) for command in peer.worker_commands(slots, variant)]
    try:
        _warm_up(peer, workers, logs)
        _answer(peer)
    finally:
        _stop(workers)
    shutil.rmtree(logs)  # kept when the session failed, for its workers' logs


def _start(command: list[str], logs: Path) -> subprocess.Popen[bytes]:
    """A worker in a session of its own, so that its pool goes with it at the end."""
    log = (logs / f"worker-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _warm_up(peer: ModuleType, workers: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Proves the workers consume, and lets every slot's process start before the clock does."""
    peer.collect(peer.enqueue_batch(WARM_UP_JOBS))
    dead = [worker.args for worker in workers if worker.poll() is not None]
    if dead:
        raise RuntimeError(f"workers exited: {dead}; logs in {logs}")


def _answer(peer: ModuleType) -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "burst" in request:
            answer: dict[str, Any] = _burst(peer, request["burst"], request["jobs"])
        else:
            answer = {"starts": [_idle_start(peer) for _ in range(request["idle"])]}
        print(json.dumps(answer), flush=True)


def _burst(peer: ModuleType, mode: str, jobs: int) -> dict[str, Any]:
    began = time.time()
    if mode == "bulk":
        handles = peer.enqueue_batch(jobs)
    else:
        handles = [peer.enqueue_one() for _ in range(jobs)]
    return {"began": began, "results": peer.collect(handles)}


def _idle_start(peer: ModuleType) -> float:
    enqueued = time.time()
    (recorded,) = peer.collect([peer.enqueue_one()])
    return float(recorded["start"]) - enqueued


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each worker, then SIGKILL to whatever is left of its own session."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        if worker.poll() is None:
            worker.wait(5)


if __name__ == "__main__":
    main()
