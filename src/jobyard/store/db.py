"""Engines, connections and the unit of work; every SQLite/PostgreSQL difference in connecting."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
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


class Database:
    """One engine and the transactions on it."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: Engine = self._create_engine()
        # SQLite has one writer at a time and its busy handler backs off by sleeping up to
        # 100 ms; queueing this process's writers on a lock hands the database over at once.
        self._write_lock = threading.RLock() if self.is_sqlite else None

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                poolclass=NullPool if ":memory:" in self.url else None,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(
            self.url, pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_SIZE, pool_pre_ping=True
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work: commit on a clean exit, roll back on any exception."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
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


def _sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get("jobyard_read_only", False)
    mode = "DEFERRED" if read_only else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")
