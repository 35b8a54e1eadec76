"""Engines, connections and the unit of work; every SQLite/PostgreSQL difference in connecting."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from jobyard import jsontext

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Enough kept connections for the request threads and embedded workers at once: a
# connection beyond the pool is opened (with its PRAGMAs) and closed on every use.
SQLITE_POOL_SIZE = 24
PG_POOL_SIZE = 10


def normalise_url(url: str) -> str:
    """Accept `postgresql://` (what people write) and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level; we issue BEGIN ourselves so that write transactions
    # can take the database lock up front (BEGIN IMMEDIATE) and never deadlock on upgrade.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class _SqliteWriterQueue:
    """SQLite has one writer at a time, and its busy handler waits for the lock by sleeping
    (up to 100 ms a try). Writers queue instead: threads of this process on a lock, and
    processes sharing the file (several `jobyard worker`s on one host) on an flock beside
    it, which the kernel hands over the moment it is released."""

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        database = engine.url.database
        if database and database != ":memory:":
            path = f"{database}.writer-lock"
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @contextmanager
    def turn_if_free(self) -> Iterator[bool]:
        """Take the writer's turn only if nobody holds it (never waits): True if taken."""
        if not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            outermost = self._depth == 0
            if outermost and self._fd is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
                if outermost and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            outermost = self._depth == 0
            if outermost and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outermost and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


class Database:
    """One engine and the transactions on it."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: Engine = self._create_engine()
        self._writers = _SqliteWriterQueue(self.engine) if self.is_sqlite else None

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
                hide_parameters=True,  # no error text carries a password hash or a token
                **_sqlite_pool_options(self.url),
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(
            self.url,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_POOL_SIZE,
            pool_pre_ping=True,
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
            hide_parameters=True,  # no error text carries a password hash or a token
        )

    @property
    def quick_reads(self) -> bool:
        """Whether a read of a row or two by key may run on the event loop's own thread:
        SQLite in WAL mode answers it from the local file without waiting for any writer,
        sooner than a hand-off to a worker thread; PostgreSQL is a network round trip."""
        return self.is_sqlite

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work: commit on a clean exit, roll back on any exception."""
        if self._writers is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writers.turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def writer_turn_if_free(self) -> Iterator[bool]:
        """On SQLite, take the writer's turn if nobody holds it, without waiting: True if
        taken (a transaction in this thread then starts at once). Elsewhere always False."""
        if self._writers is None:
            yield False
            return
        with self._writers.turn_if_free() as taken:
            yield taken

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """For a single SELECT: on SQLite the statement is its own snapshot, so no BEGIN and
        COMMIT round trips (each one a call that hands the GIL over under load)."""
        if not self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn.execution_options(jobyard_read_only=True, jobyard_single_statement=True)
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (a deferred transaction on SQLite: no write lock)."""
        with self.engine.connect() as conn:
            conn.execution_options(jobyard_read_only=True)
            with conn.begin():
                yield conn

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()


def _sqlite_pool_options(url: str) -> dict[str, Any]:
    if ":memory:" in url:
        return {"poolclass": NullPool}
    return {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_SIZE}


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("jobyard_single_statement", False):
        return  # autocommit at the driver: the one statement runs in its own transaction
    read_only = options.get("jobyard_read_only", False)
    mode = "DEFERRED" if read_only else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")
