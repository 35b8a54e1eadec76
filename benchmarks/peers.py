"""The same job workload on Celery, RQ, Dramatiq and Procrastinate, through the harness in
`../shared/peers/` (run from there, in its own virtualenv; nothing of it is copied here)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import deploy
from benchmarks.measure import Figure, Report

HARNESS = Path(__file__).resolve().parents[2] / "shared" / "peers"
VENV = Path(os.environ.get("JOBYARD_PEERS_VENV", "/tmp/jobyard-peers-venv"))
PACKAGES = [
    "celery[redis]",
    "redis",
    "rq",
    "dramatiq[redis]",
    "procrastinate",
    "psycopg[binary]",
    "psycopg-pool",
]
LINE = re.compile(r"^(\S+)\s+([\d.]+) jobs/s")
# The peers' set-up flushes its Redis database and drops PostgreSQL's `public` schema: they
# get a Redis server and a database of the bench's own, never the machine's. A Redis the
# caller names here is one it says may be flushed.
DISPOSABLE_REDIS = "JOBYARD_BENCH_DISPOSABLE_REDIS_URL"


# After the harness has run every peer once, jobyard and the best of them take turns this
# many times: the machine drifts (one commit moved by a fifth within the hour, the peers as
# much), so the figures compared are taken a minute apart, not a quarter of an hour.
ROUNDS = 3


def run(report: Report, jobyard: Callable[[], Figure]) -> None:
    """Every peer through the harness, then jobyard and the best peer in turns; the goal
    is read from the median of the turns' ratios."""
    if not HARNESS.exists():
        report.note("peers", f"harness not found at {HARNESS}")
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    with disposable_stores() as stores:
        _compare(report, jobyard, python, stores)


def _compare(
    report: Report, jobyard: Callable[[], Figure], python: Path, stores: dict[str, str]
) -> None:
    rates, failure = _harness(python, stores)
    for name, rate in rates.items():
        report.note(f"peer {name}", f"{rate:,.0f} jobs/s")
    peers = {name: rate for name, rate in rates.items() if not name.startswith("baseline")}
    if not peers:
        report.note("peers", "the harness printed no figures: " + failure)
        return
    best = max(peers, key=peers.__getitem__)
    ours, theirs = [], []
    for _ in range(ROUNDS):
        ours.append(jobyard().median)
        theirs.append(_harness(python, stores, systems=best, serial=0)[0].get(best, float("nan")))
    report.add(
        "SQLite embedded as above, in turns with the best peer", Figure(tuple(ours)), "jobs/s"
    )
    report.add(f"peer {best}, in turns with jobyard", Figure(tuple(theirs)), "jobs/s")
    turns = sorted(o / t for o, t in zip(ours, theirs, strict=True))
    report.note(
        "jobyard SQLite vs best peer, turn by turn",
        f"{statistics.median(turns):.2f}x ({turns[0]:.2f}..{turns[-1]:.2f})",
        "≥ 2x",
    )


def _harness(
    python: Path, stores: dict[str, str], *, systems: str = "", serial: int = 100
) -> tuple[dict[str, float], str]:
    """The harness's jobs/s by system (2,000 jobs, 3 runs each), and its stderr's end."""
    env = os.environ | stores
    command = [str(python), "run_peers.py", "--jobs", "2000", "--runs", "3"]
    command += ["--serial", str(serial), "--workdir", str(VENV / "work")]
    if systems:
        command += ["--systems", systems]
    out = subprocess.run(command, cwd=HARNESS, env=env, capture_output=True, text=True, check=False)
    rates = {}
    for line in out.stdout.splitlines():
        if match := LINE.match(line.strip()):
            rates[match.group(1)] = float(match.group(2))
    return rates, out.stderr[-300:]


@contextmanager
def disposable_stores() -> Iterator[dict[str, str]]:
    """`BENCH_REDIS_URL` and `BENCH_PG_DSN` for the harness: a Redis server started here (or
    the one `JOBYARD_BENCH_DISPOSABLE_REDIS_URL` names) and a PostgreSQL database created
    here, both gone afterwards."""
    with _redis() as redis_url, deploy.database("postgres") as postgres_url:
        yield {"BENCH_REDIS_URL": redis_url, "BENCH_PG_DSN": postgres_url}


@contextmanager
def _redis() -> Iterator[str]:
    named = os.environ.get(DISPOSABLE_REDIS, "").strip()
    if named:
        yield named
        return
    folder = Path(tempfile.mkdtemp(prefix="jobyard-bench-redis-"))
    port = deploy.free_port()
    options = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    options += ["--save", "", "--appendonly", "no", "--logfile", str(folder / "redis.log")]
    server = subprocess.Popen(
        ["redis-server", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise RuntimeError(f"redis-server exited with {server.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on port {port}")
