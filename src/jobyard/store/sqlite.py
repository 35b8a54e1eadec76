"""SQLite as jobyard uses it: a private file, WAL and the connection's PRAGMAs, write
transactions that take the lock up front, writers queued in and across processes instead of
SQLite's sleeping busy handler, and statements interrupted at their deadline."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import NullPool

from jobyard.domain import regex

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
# Enough kept connections for the request threads and embedded workers at once: a
# connection beyond the pool is opened (with its PRAGMAs) and closed on every use.
POOL_SIZE = 24
# The writers' own pool (see `Database`): the one connection that one writer at a time uses.
WRITER_POOL_SIZE = 1

FILE_MODE = 0o600

# The `->>` operator, which indexes of job options are written with (migration 0017).
LEAST_VERSION = (3, 38, 0)


def check_version(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Refuse an SQLite library older than jobyard's schema needs, saying which it is."""
    if version < LEAST_VERSION:
        found, least = ".".join(map(str, version)), ".".join(map(str, LEAST_VERSION))
        raise RuntimeError(f"SQLite {least} or later is needed; Python's sqlite3 has {found}")


def local_file(database: str | None) -> str | None:
    """The file an SQLite URL's database names (None for memory and `file:` URIs)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def private_file(database: str) -> None:
    """Create the SQLite file the server's alone (0600), or make the one there so: SQLite
    gives its WAL and shared-memory files the database file's mode, whatever the umask."""
    # An existing file is never opened here: closing a descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's included, and without its shared lock
    # another process's last connection would checkpoint and remove the WAL under ours.
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite reports it when it opens the file, in its own words
    try:
        mode = stat.S_IMODE(os.stat(database).st_mode)
    except OSError:
        return
    if mode & ~FILE_MODE:
        os.chmod(database, FILE_MODE)
        logger.warning("made %s private (its mode was %o, now 600)", database, mode)
    for companion in (f"{database}-wal", f"{database}-shm"):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(os.stat(companion).st_mode) & ~FILE_MODE:
                os.chmod(companion, FILE_MODE)


def set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level; we issue BEGIN ourselves so that write transactions
    # can take the database lock up front (BEGIN IMMEDIATE) and never deadlock on upgrade.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
        # A new file: deleted rows' pages may go back to the file system (retention runs
        # `incremental_vacuum`), which only a file made so allows (`jobyard db vacuum`
        # converts an older one).
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Replaces SQLAlchemy's REGEXP, Python's `re`: it backtracks, holding the GIL meanwhile.
    dbapi_conn.create_function("regexp", 2, regex.search, deterministic=True)


def for_writes(dbapi_conn: Any, _record: Any) -> None:
    """The set-up of the writers' connections, after `set_pragmas`. A statement that may
    fail halfway through a transaction (a job's insert: its triggers, its checks) keeps the
    pages it changes in a statement journal, which SQLite writes to a file in /var/tmp
    (opened, unlinked, written, closed) once it passes 64 KiB, as a launch's did: here it
    stays in memory. Only writers' connections: a reader's large sort spills to disk."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


class WriterQueue:
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


def pool_options(url: str, pool_size: int | None) -> dict[str, Any]:
    if ":memory:" in url:
        return {"poolclass": NullPool}
    size = POOL_SIZE if pool_size is None else pool_size
    return {"pool_size": size, "max_overflow": size}


class _Watchdog:
    """Interrupts SQLite statements that run past their deadline, from a thread of its own.

    A progress handler would do it from the statement's thread, but it is Python code: it
    takes the GIL at each look at the clock, and under load waits for it (up to the switch
    interval, 5 ms, a look) where the statement itself runs without it. Here a statement
    costs two turns of a lock, and the thread sleeps until the earliest deadline.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[int, tuple[float, Any]] = {}  # by ticket: deadline, raw connection
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread looks next, unless notified

    @contextmanager
    def deadline(self, raw: Any, seconds: float) -> Iterator[None]:
        ticket = next(self._tickets)
        due = time.monotonic() + seconds
        with self._changed:
            self._due[ticket] = (due, raw)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="jobyard-sqlite-watchdog", daemon=True
                )
                self._thread.start()
            elif due < self._wakes_at:  # rarely: one time limit makes deadlines grow
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:  # once gone from `_due`, the connection is never interrupted
                self._due.pop(ticket, None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for ticket, (due, raw) in list(self._due.items()):
                    if due <= now:
                        del self._due[ticket]
                        raw.interrupt()  # a no-op if its statement has just ended
                self._wakes_at = min((due for due, _raw in self._due.values()), default=math.inf)
                self._changed.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


_WATCHDOG = _Watchdog()


@contextmanager
def deadline(conn: Connection, seconds: float) -> Iterator[None]:
    with _WATCHDOG.deadline(conn.connection.driver_connection, seconds):
        yield


def begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("jobyard_single_statement", False):
        return  # autocommit at the driver: the one statement runs in its own transaction
    read_only = options.get("jobyard_read_only", False)
    mode = "DEFERRED" if read_only else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")
