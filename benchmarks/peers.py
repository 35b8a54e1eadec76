"""The peers' side of the bench: their virtualenv, and stores of the bench's own for them; the
measuring is `benchmarks.matrix` with the drivers in `benchmarks.systems`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import deploy, matrix
from benchmarks.measure import Report

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
# The peers' set-up writes to its Redis and its PostgreSQL database: they get a Redis server
# and a database of the bench's own, never the machine's. A Redis the caller names here is
# one it says may be written to and emptied.
DISPOSABLE_REDIS = "JOBYARD_BENCH_DISPOSABLE_REDIS_URL"


def run(report: Report, *, quick: bool) -> None:
    """The like-with-like matrix (`benchmarks.matrix`) of jobyard and the peers, the peers in
    a virtualenv of their own and on stores of the bench's own."""
    if shutil.which("redis-server") is None or not deploy.postgres_available():
        report.note("peers", "needs redis-server and a reachable PostgreSQL: skipped")
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    with disposable_stores() as stores:
        matrix.run(report, python, stores, matrix.QUICK if quick else matrix.FULL)


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
