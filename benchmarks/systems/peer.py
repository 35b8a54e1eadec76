"""The bench's side of a peer: its session (`benchmarks.systems.session`) runs in the peers'
virtualenv, and this stand-in talks to it over a pipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.systems.burst import Burst

ROOT = Path(__file__).resolve().parents[2]
# System → its module here and its configurations (the module's CONFIGURATIONS say what each is).
PEERS = {
    "Celery": ("celery_peer", ("prefork", "threads")),
    "RQ": ("rq_peer", ("fork", "simple")),
    "Dramatiq": ("dramatiq_peer", ("processes",)),
    "Procrastinate": ("procrastinate_peer", ("concurrency",)),
}


class PeerSession:
    """One peer with its workers running; bursts and idle latency are asked of it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the session ended (exit code {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def burst(self, mode: str, jobs: int) -> Burst:
        answer = self._ask({"burst": mode, "jobs": jobs})
        return Burst.checked(answer["began"], jobs, answer["results"])

    def idle_starts(self, jobs: int) -> list[float]:
        return [float(start) for start in self._ask({"idle": jobs})["starts"]]


@contextmanager
def session(
    python: Path, stores: dict[str, str], system: str, variant: str, slots: int
) -> Iterator[PeerSession]:
    """`system`'s workers with `slots` slots in `variant`, ready (warmed up) on entry, gone
    on exit."""
    module = PEERS[system][0]
    env = os.environ | stores | {"PYTHONPATH": str(ROOT)}
    command = [str(python), "-m", "benchmarks.systems.session", module, variant, str(slots)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        ready = process.stdout.readline() if process.stdout else ""
        if not ready:
            raise RuntimeError(f"{system} {variant} did not start (exit code {process.wait()})")
        yield PeerSession(process)
    finally:
        _end(process)


def _end(process: subprocess.Popen[str]) -> None:
    """Closing its input stops the session's workers; what is left after a minute is killed."""
    if process.stdin:
        process.stdin.close()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
