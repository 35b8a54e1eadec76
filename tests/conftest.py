"""Fixtures: real databases (an SQLite file, and PostgreSQL when reachable) and real servers."""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.services.accounts import bootstrap_admin
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings
from jobyard.store import migrate, tables
from jobyard.store.db import Database, normalise_url
from jobyard.worker.confinement import create_job_user

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The PostgreSQL tests run against the server at this URL when it answers (each session
# creates a database of its own there and drops it); JOBYARD_TEST_POSTGRES_URL names
# another, or, set empty, turns them off.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = os.environ.get("JOBYARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
POSTGRES_CONNECT_SECONDS = 3


@functools.cache
def _postgres_reason() -> str | None:
    """Why the PostgreSQL tests are skipped, or None when they run."""
    if not POSTGRES_URL:
        return "JOBYARD_TEST_POSTGRES_URL is set empty"
    try:
        engine = sa.create_engine(
            normalise_url(POSTGRES_URL), connect_args={"connect_timeout": POSTGRES_CONNECT_SECONDS}
        )
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        shown = sa.engine.make_url(normalise_url(POSTGRES_URL)).render_as_string()
        return f"no PostgreSQL answers at {shown}: {exc.__class__.__name__}"
    return None


def _databases_line() -> str:
    reason = _postgres_reason()
    if reason is None:
        shown = sa.engine.make_url(normalise_url(POSTGRES_URL)).render_as_string()
        return f"databases: SQLite and PostgreSQL ({shown})"
    return f"databases: SQLite only ({reason})"


def pytest_report_header() -> str:
    return _databases_line()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(_databases_line())


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"jobyard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(POSTGRES_URL)).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    db = Database(rendered)
    migrate.upgrade(db)
    db.dispose()
    _bootstrapped(rendered, tmp_path_factory.mktemp("pg-bootstrap"))
    with Database(rendered).transaction() as conn:
        _ACCOUNTS[rendered] = [
            (table, [dict(row._mapping) for row in conn.execute(sa.select(table))])
            for table in (tables.tenants, tables.users, tables.epochs)
        ]
    yield rendered
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# A first start's work, done once per session: the system customer and its admin, whose
# generated password takes argon2 a tenth of a second to hash, a tenth of a second that every
# test starting a server would otherwise pay. Each test's own start then finds them.
_ACCOUNTS: dict[str, list[tuple[sa.Table, list[dict[str, Any]]]]] = {}


def _bootstrapped(url: str, data_dir: Path) -> None:
    """The customer and admin only: the token a first start makes (hashed under this data
    directory's key, not a test's) and its audit go."""
    rt = open_runtime(Settings(data_dir=data_dir, database_url=url))
    bootstrap_admin(rt)
    with rt.db.transaction() as conn:
        conn.execute(sa.delete(tables.tokens))
        conn.execute(sa.delete(tables.audit_events))
    rt.db.dispose()


def _truncate(url: str) -> None:
    """Back to the session's start: every table emptied, then its customer and admin."""
    db = Database(url)
    with db.transaction() as conn:
        names = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        emptied = ", ".join(f'"{n}"' for n in names if n != "alembic_version")
        conn.execute(sa.text(f"TRUNCATE {emptied} RESTART IDENTITY CASCADE"))
        for table, rows in _ACCOUNTS[url]:
            conn.execute(table.insert(), rows)
            if "id" not in table.c:  # keyed by name (epochs): no sequence
                continue
            conn.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, its first start done (see `_bootstrapped`), that each test
    copies: faster than migrating every time."""
    path = tmp_path_factory.mktemp("template") / "jobyard.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    _bootstrapped(f"sqlite:///{path}", tmp_path_factory.mktemp("template-data"))
    return path  # disposing of the last connection checkpointed the WAL into the file


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database holding only the system customer and its admin: an SQLite file,
    or the session's PostgreSQL truncated."""
    if request.param == "sqlite":
        path = tmp_path / "jobyard.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    return url


@pytest.fixture(scope="session")
def jobs_run_as() -> Iterator[str]:
    """JOBYARD_RUN_AS for tests of a real start: as root, a Unix user of this test
    session's own (made with useradd, removed with userdel at the end; not jobyard-job,
    which would stay behind); otherwise `server`, as a newcomer's `make run` has it."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        yield "server"
        return
    name = f"jobyard-t-{secrets.token_hex(4)}"
    create_job_user(name)
    yield name
    subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture(scope="session")
def job_user(jobs_run_as: str) -> str:
    """The test session's own Unix user for jobs; skips where it cannot be made."""
    if jobs_run_as == "server":
        pytest.skip("running jobs as a user of their own needs root (and useradd)")
    return jobs_run_as


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        workers=2,
        admin_token=ADMIN_TOKEN,
        cancel_grace_seconds=1.0,
        drain_seconds=1.0,
        # The jobs of most tests run this venv's Python, which may sit in a home only its
        # owner may enter; the tests of isolation itself (test_isolation.py) choose a user.
        run_as="server",
        runs_dir=tmp_path / "runs",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = open_runtime(settings)
    migrate.upgrade(rt.db)
    yield rt
    rt.db.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The whole app in-process, with its embedded workers, authenticated as the admin."""
    with TestClient(create_app(settings), headers=AUTH) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(
    proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 30
) -> None:
    """Until a `jobyard serve` started as a process answers `/healthz` (its log is the
    failure's message if it dies or stays silent)."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        port = free_port()
        self.settings = Settings(**{**settings.__dict__, "port": port})
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            loop="asyncio",
            http="httptools",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A real jobyard server on a free loopback port, with embedded workers."""
    with LiveServer(settings) as server:
        yield server


# Uids for the tests of JOBYARD_JOB_UIDS: in a stretch nothing assigns (see
# worker/confinement.DEFAULT_JOB_UIDS), apart from jobyard's own default; 64 for each pytest
# worker (`make test` runs one per core), so that one worker's jobs never hold another's uids.
TEST_JOB_UIDS_BASE = 0x7A5E_0000
TEST_JOB_UIDS_EACH = 64
_WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_JOB_UIDS = (
    TEST_JOB_UIDS_BASE + TEST_JOB_UIDS_EACH * _WORKER_INDEX,
    TEST_JOB_UIDS_BASE + TEST_JOB_UIDS_EACH * (_WORKER_INDEX + 1) - 1,
)


def _running_uids() -> set[int]:
    """The uids of every live process (not zombies: those are dead, waiting to be reaped)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if not fields["State"].strip().startswith("Z"):
            found.update(int(uid) for uid in fields["Uid"].split())
    return found


@pytest.fixture(scope="session")
def job_uid_range() -> tuple[int, int]:
    """A range of uids that no user has and nothing runs as, for JOBYARD_JOB_UIDS; skips
    where there is none (or where the tests do not run as root)."""
    if os.geteuid() != 0:
        pytest.skip("giving each job a uid of its own (JOBYARD_JOB_UIDS) needs root")
    first, last = TEST_JOB_UIDS
    taken = {entry.pw_uid for entry in pwd.getpwall()} | _running_uids()
    if any(first <= uid <= last for uid in taken):
        pytest.skip(f"the test uids {first}-{last} are in use on this host")
    return first, last
