"""Engines, connections and the unit of work; every SQLite/PostgreSQL difference in connecting."""

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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool

from jobyard import jsontext
from jobyard.domain import regex

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Enough kept connections for the request threads and embedded workers at once: a
# connection beyond the pool is opened (with its PRAGMAs) and closed on every use.
SQLITE_POOL_SIZE = 24
PG_POOL_SIZE = 10
TIME_LIMIT_OPTION = "jobyard_time_limit"
PG_QUERY_CANCELED = "57014"


DATABASE_ERROR_TYPES: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout)


def transient(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached, or could not serve the
    statement just now (a broken connection, a lock or statement timeout, a busy SQLite file,
    no pooled connection free), rather than refused the statement: worth trying again."""
    if isinstance(error, PoolTimeout | OperationalError | InterfaceError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    return error.connection_invalidated or _sqlstate(error) in PG_SESSION_ENDED


# The server ended the session (its transaction idle past its limit): psycopg reports it
# as an internal error, though a new session serves the same statement.
PG_SESSION_ENDED = frozenset({"25P03"})


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


# TCP keepalives on PostgreSQL connections: a peer (or the network path to it) that died
# without closing the connection is noticed after about idle + interval * count seconds.
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_COUNT = 3


@dataclass(frozen=True)
class Timeouts:
    """What PostgreSQL bounds on every connection of a `Database`, in seconds (0: no limit),
    so that nothing waits without end: connecting; waiting for a lock another session holds
    (a worker frozen inside a transaction holds its rows' locks); one statement; and a session
    left idle inside a transaction, which the server then ends, releasing its locks (that is
    what frees the rows of a frozen worker). SQLite is one host whose writers queue, with its
    own busy timeout: none of these apply there."""

    connect: float = 5.0
    lock: float = 5.0
    statement: float = 30.0
    idle_in_transaction: float = 10.0

    def at_most(self, *, lock: float, statement: float) -> Timeouts:
        """These limits, with lock and statement timeouts no longer than given."""
        return replace(
            self, lock=_shorter(self.lock, lock), statement=_shorter(self.statement, statement)
        )

    def connect_args(self) -> dict[str, Any]:
        """libpq connection parameters that apply these limits from a session's start."""
        settings = {
            "lock_timeout": self.lock,
            "statement_timeout": self.statement,
            "idle_in_transaction_session_timeout": self.idle_in_transaction,
        }
        args: dict[str, Any] = {
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
            "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
            "keepalives_count": KEEPALIVE_COUNT,
            "options": " ".join(f"-c {name}={_ms(value)}" for name, value in settings.items()),
        }
        if self.connect > 0:  # libpq takes whole seconds (and treats 1 as 2)
            args["connect_timeout"] = max(1, math.ceil(self.connect))
        return args


NO_TIMEOUTS = Timeouts(connect=0, lock=0, statement=0, idle_in_transaction=0)
# What migrations run with (long DDL, a table rewrite): no lock, statement or idle limits.
LIMITS_OFF = (
    "SET LOCAL lock_timeout = 0",
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL idle_in_transaction_session_timeout = 0",
)


def _shorter(current: float, limit: float) -> float:
    return limit if current <= 0 else min(current, limit)


def _ms(seconds: float) -> int:
    """PostgreSQL's milliseconds; a limit under one is one, never 0 (which means none)."""
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def normalise_url(url: str) -> str:
    """Accept `postgresql://` (what people write) and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


SQLITE_FILE_MODE = 0o600


def _private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file the server's alone (0600), or make the one there so: SQLite
    gives its WAL and shared-memory files the database file's mode, whatever the umask."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    # An existing file is never opened here: closing a descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's included, and without its shared lock
    # another process's last connection would checkpoint and remove the WAL under ours.
    try:
        os.close(
            os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SQLITE_FILE_MODE)
        )
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite reports it when it opens the file, in its own words
    try:
        mode = stat.S_IMODE(os.stat(database).st_mode)
    except OSError:
        return
    if mode & ~SQLITE_FILE_MODE:
        os.chmod(database, SQLITE_FILE_MODE)
        logger.warning("made %s private (its mode was %o, now 600)", database, mode)
    for companion in (f"{database}-wal", f"{database}-shm"):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(os.stat(companion).st_mode) & ~SQLITE_FILE_MODE:
                os.chmod(companion, SQLITE_FILE_MODE)


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
    # Replaces SQLAlchemy's REGEXP, Python's `re`: it backtracks, holding the GIL meanwhile.
    dbapi_conn.create_function("regexp", 2, regex.search, deterministic=True)


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
    """One engine and the transactions on it.

    `query_timeout` (seconds, 0 for none) limits each statement of a listing (see
    `time_limited`); nothing else is ever cut short by it. `timeouts` bound every statement
    on PostgreSQL (see `Timeouts`).
    """

    def __init__(
        self,
        url: str,
        *,
        query_timeout: float = 0.0,
        pool_size: int | None = None,
        writers: _SqliteWriterQueue | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.query_timeout = query_timeout
        self.timeouts = Timeouts() if timeouts is None else timeouts
        if self.is_sqlite:
            _private_sqlite_file(make_url(self.url).database)
        self.engine: Engine = self._create_engine(pool_size)
        self._owns_writers = writers is None
        if writers is None and self.is_sqlite:
            writers = _SqliteWriterQueue(self.engine)
        self._writers = writers

    def _create_engine(self, pool_size: int | None) -> Engine:
        limit = {TIME_LIMIT_OPTION: self.query_timeout} if self.query_timeout > 0 else {}
        if self.is_sqlite:
            engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
                execution_options=limit,
                hide_parameters=True,  # no error text carries a password hash or a token
                **_sqlite_pool_options(self.url, pool_size),
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        size = PG_POOL_SIZE if pool_size is None else pool_size
        return create_engine(
            self.url,
            connect_args=self.timeouts.connect_args(),
            pool_size=size,
            max_overflow=size,
            pool_pre_ping=True,
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
            execution_options=limit,
            hide_parameters=True,  # no error text carries a password hash or a token
        )

    def dedicated(self, *, timeouts: Timeouts | None = None) -> Database:
        """The same database through a connection of its own, for a thread that must never
        wait for one of the shared pool (the lease heartbeat): request threads can hold them
        all. On SQLite it still queues for the writer's turn with this process's writers.
        `timeouts`: its own limits on PostgreSQL (this database's if None)."""
        return Database(
            self.url,
            query_timeout=self.query_timeout,
            pool_size=1,
            writers=self._writers,
            timeouts=timeouts or self.timeouts,
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
        if self._writers is not None and self._owns_writers:
            self._writers.close()


def _sqlite_pool_options(url: str, pool_size: int | None) -> dict[str, Any]:
    if ":memory:" in url:
        return {"poolclass": NullPool}
    size = SQLITE_POOL_SIZE if pool_size is None else pool_size
    return {"pool_size": size, "max_overflow": size}


@contextmanager
def time_limited(conn: Connection) -> Iterator[None]:
    """Statements run inside are cut short after the database's `query_timeout`, which
    `ran_out_of_time` then recognises. On PostgreSQL this sets `statement_timeout` for the
    rest of the transaction, then restores it: enter it outside any savepoint that the
    cancelled statement aborts."""
    seconds = conn.get_execution_options().get(TIME_LIMIT_OPTION)
    if not seconds:
        yield
        return
    if conn.dialect.name == "sqlite":
        with _sqlite_deadline(conn, seconds):
            yield
        return
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
    yield  # after an error, the transaction's end restores it
    conn.exec_driver_sql("SET LOCAL statement_timeout = DEFAULT")


class _SqliteWatchdog:
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


_WATCHDOG = _SqliteWatchdog()


@contextmanager
def _sqlite_deadline(conn: Connection, seconds: float) -> Iterator[None]:
    with _WATCHDOG.deadline(conn.connection.driver_connection, seconds):
        yield


def ran_out_of_time(exc: DBAPIError) -> bool:
    """Whether a statement failed because `time_limited` cut it short."""
    if isinstance(exc.orig, sqlite3.OperationalError):
        return str(exc.orig) == "interrupted"
    return getattr(exc.orig, "sqlstate", None) == PG_QUERY_CANCELED


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("jobyard_single_statement", False):
        return  # autocommit at the driver: the one statement runs in its own transaction
    read_only = options.get("jobyard_read_only", False)
    mode = "DEFERRED" if read_only else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")
