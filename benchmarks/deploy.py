"""Real deployments to measure: a `jobyard serve` process (SQLite with embedded workers, or
PostgreSQL API-only) plus `jobyard worker` processes, each on a fresh database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

TOKEN = "bench-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POSTGRES_URL = os.environ.get(
    "JOBYARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return False
    return True


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a PostgreSQL database dropped after."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="jobyard-bench-"))
        try:
            yield f"sqlite:///{folder / 'jobyard.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    name = f"jobyard_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env |= {
        "JOBYARD_DATABASE_URL": url,
        "JOBYARD_DATA_DIR": str(data_dir),
        "JOBYARD_ADMIN_TOKEN": TOKEN,
        "JOBYARD_DRAIN_SECONDS": "2",
        "JOBYARD_RUN_AS": default_run_as(),
    }
    return env | extra


def default_run_as() -> str:
    """As jobyard itself has it: as root, jobs run as the system user jobyard-job (made at
    the first start); anyone else runs them as themselves, as `make run` does."""
    return "" if os.geteuid() == 0 else "server"


@dataclass
class Deployment:
    """A running server (and workers) with an HTTP client for its API."""

    url: str
    database_url: str
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Polling must not weigh on what it measures: a new httpx.Client per poll cost about
    # 23 ms of CPU (its SSL context), and the server a new connection.
    _poller: httpx.Client | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.server.pid

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=AUTH, timeout=120, **options)

    def package(self, command: list[str], name: str = "") -> str:
        with self.client() as api:
            body = {"name": name or f"p{time.monotonic_ns()}", "command": command}
            answer = api.post("/packages/", json=body)
            answer.raise_for_status()
            package_id: str = answer.json()["data"]["id"]
            return package_id

    def device(self, name: str) -> str:
        with self.client() as api:
            answer = api.post("/devices/", json={"name": name})
            answer.raise_for_status()
            device_id: str = answer.json()["data"]["id"]
            return device_id

    def count(self, status: str) -> int:
        """Jobs in `status`, asked through the API over one kept connection."""
        if self._poller is None:
            self._poller = self.client()
        page = self._poller.get("/jobs/", params={"filter": f"status={status}", "limit": 1})
        if page.status_code != 200:
            raise RuntimeError(f"counting {status} jobs: {page.status_code} {page.text[:300]}")
        return int(page.json()["links"]["total"])

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()

    def wait_done(self, total: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.count("completed") < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{total} jobs did not complete")
            # The end time comes from the database, not from this poll, so polling only
            # has to notice the end: a poll costs the server about 3 ms of CPU (and this
            # client 1 ms), which at 10 a second took 2 % of a 2-core machine from the
            # run it measured.
            time.sleep(0.5)

    def last_finish(self) -> datetime:
        db = sa.create_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://"))
        with db.connect() as conn:
            value = conn.execute(sa.text("SELECT max(finished) FROM jobs")).scalar_one()
        db.dispose()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite keeps naive UTC


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], path: str = "/healthz", name: str = "jobyard serve"
) -> None:
    """Until `url` + `path` answers 200 (`proc` serves it); an error if it exits or a minute
    passes first."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early")
        try:
            if httpx.get(f"{url}{path}").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)


@contextmanager
def deployment(
    database_url: str,
    *,
    embedded_slots: int,
    workers: int = 0,
    slots: int = 2,
    **settings: str,
) -> Iterator[Deployment]:
    """`jobyard serve` with `embedded_slots` (0 = API only) and `workers` worker processes;
    `settings`: more JOBYARD_* variables for all of them (e.g. JOBYARD_RUN_AS)."""
    data_dir = Path(tempfile.mkdtemp(prefix="jobyard-bench-data-"))
    port = free_port()
    env = _env(
        database_url,
        data_dir,
        JOBYARD_PORT=str(port),
        JOBYARD_WORKERS=str(embedded_slots),
        **settings,
    )
    log = (data_dir / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jobyard", "serve", "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=log,
    )
    deployed = Deployment(url=f"http://127.0.0.1:{port}", database_url=database_url, server=server)
    try:
        wait_ready(deployed.url, server)
        for _ in range(workers):
            deployed.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "jobyard",
                        "worker",
                        "--slots",
                        str(slots),
                        "--log-level",
                        "warning",
                    ],
                    env=_env(database_url, data_dir, **settings),
                    stdout=log,
                    stderr=log,
                )
            )
        if workers:
            time.sleep(2.0)  # let them register and start listening
        yield deployed
    finally:
        deployed.close()
        for proc in [*deployed.workers, server]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*deployed.workers, server]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        _keep_errors(data_dir / "serve.log")
        shutil.rmtree(data_dir, ignore_errors=True)


def _keep_errors(log: Path) -> None:
    """Echo what the deployment logged at ERROR or worse: a bench that measured a server
    that failed must say so."""
    text = log.read_text(errors="replace")
    if "ERROR" in text or "Traceback" in text:
        print(f"--- the deployment logged errors ({log.name}) ---\n{text[-20000:]}")
