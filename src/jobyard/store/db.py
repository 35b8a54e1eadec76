"""Engines, connections and the unit of work on SQLite or PostgreSQL; what is transient; the
time limit of a listing's statements. How SQLite is set up and its writers queued: `sqlite`."""

from __future__ import annotations

import ipaddress
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from jobyard import jsontext
from jobyard.store import pings, sqlite
from jobyard.store.doorbell import Doorbell
from jobyard.store.driver_transaction import DriverConnection, driver_transaction
from jobyard.store.key_reads import KeyReads
from jobyard.store.sqlite_checkpoints import Checkpointer, without_auto_checkpoints
from jobyard.store.thread_connections import ThreadConnections

PG_POOL_SIZE = 10
# A read by key on a PostgreSQL server on this host (run on the event loop, see
# `Database.quick_reads`) that takes longer than this, because it waited for a table another
# session holds (a migration at a newer server's start) or the server is in trouble, sends
# the reads by key back to the threadpool for a while: the event loop waits out one such
# read, not every one after it.
QUICK_READ_SLOW_SECONDS = 0.1
QUICK_READS_PAUSE_SECONDS = 30.0
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


def on_this_host(url: str) -> bool:
    """Whether a PostgreSQL URL names a server on this host only: a Unix socket (no host,
    as libpq then takes `PGHOST` or its socket; or a socket directory), `localhost` or
    loopback addresses."""
    parsed = make_url(url)
    named = parsed.host or parsed.query.get("host") or os.environ.get("PGHOST", "")
    entries = named if isinstance(named, tuple) else named.split(",")
    return all(_local_host(_host_name(entry)) for entry in entries)


def _host_name(entry: str) -> str:
    """The host of a `host` or `host:port` (an IPv6 address with a port is in brackets)."""
    entry = entry.strip()
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    name, colon, port = entry.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else entry


def _local_host(host: str) -> bool:
    if not host or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        writers: sqlite.WriterQueue | None = None,
        timeouts: Timeouts | None = None,
        background_checkpoints: bool = False,
    ) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._pg_on_this_host = not self.is_sqlite and on_this_host(self.url)
        self._quick_reads_paused_until = 0.0  # monotonic (see `QUICK_READ_SLOW_SECONDS`)
        if self.is_sqlite:
            sqlite.check_version()
        self.query_timeout = query_timeout
        self.timeouts = Timeouts() if timeouts is None else timeouts
        # The SQLite file, which other processes may share (None: PostgreSQL or memory).
        self.sqlite_file = (
            sqlite.local_file(make_url(self.url).database) if self.is_sqlite else None
        )
        if self.sqlite_file:
            sqlite.private_file(self.sqlite_file)
        # Rung after new work is committed, for workers of other processes on the same file.
        self.doorbell = Doorbell(self.sqlite_file) if self.sqlite_file else None
        self.engine: Engine = self._create_engine(pool_size)
        # This process's writes to an SQLite file take turns (see `sqlite.WriterQueue`), so
        # one connection serves them, and keeps its page cache from one to the next: a
        # connection's cache is dropped when another has written since its last use.
        self._write_engine = self.engine
        if self.sqlite_file:
            self._write_engine = self._create_engine(sqlite.WRITER_POOL_SIZE)
            event.listen(self._write_engine, "connect", sqlite.for_writes)
        # The writers' connection, kept from one write transaction to the next (see
        # `_take_writer`); None while a transaction uses it, or before the first.
        self._kept_writer: Connection | None = None
        # Reads by key on SQLite, each thread on a connection of its own (see `read_key`).
        self._key_readers = ThreadConnections(self.engine) if self.is_sqlite else None
        self._owns_writers = writers is None
        if writers is None and self.is_sqlite:
            writers = sqlite.WriterQueue(self.engine)
        self._writers = writers
        # The log's checkpoints, off the committing threads (see `sqlite_checkpoints`).
        self._checkpointer: Checkpointer | None = None
        if background_checkpoints and self.sqlite_file and writers is not None:
            for engine in {self.engine, self._write_engine}:
                event.listen(engine, "connect", without_auto_checkpoints)
            self._checkpointer = Checkpointer(self.engine, self.writer_turn)
            self._checkpointer.start()

    def _create_engine(self, pool_size: int | None) -> Engine:
        limit = {TIME_LIMIT_OPTION: self.query_timeout} if self.query_timeout > 0 else {}
        if self.is_sqlite:
            engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": sqlite.BUSY_TIMEOUT_MS / 1000},
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
                execution_options=limit,
                hide_parameters=True,  # no error text carries a password hash or a token
                **sqlite.pool_options(self.url, pool_size),
            )
            event.listen(engine, "connect", sqlite.set_pragmas)
            event.listen(engine, "begin", sqlite.begin)
            return engine
        size = PG_POOL_SIZE if pool_size is None else pool_size
        engine = create_engine(
            self.url,
            connect_args=self.timeouts.connect_args(),
            pool_size=size,
            max_overflow=size,
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
            execution_options=limit,
            hide_parameters=True,  # no error text carries a password hash or a token
        )
        pings.ping_when_idle(engine)
        return engine

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
        """Whether a read of a row or two by key may run on the event loop's own thread,
        sooner than a hand-off to a worker thread and back: SQLite in WAL mode answers it
        from the local file without waiting for any writer; PostgreSQL on this host in a
        fraction of a millisecond, less than the hand-off's two thread wake-ups and the
        GIL passed twice (docs/performance.md, "Reads by key on the event loop"), except
        for a while after a slow one (see `QUICK_READ_SLOW_SECONDS`). A server on another
        host is a network away, where a read must not hold up every other request: its
        reads keep the hand-off."""
        return self.is_sqlite or (
            self._pg_on_this_host and time.monotonic() >= self._quick_reads_paused_until
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work: commit on a clean exit, roll back on any exception."""
        if self._writers is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writers.turn():
            conn = self._take_writer()
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                conn.close()  # back to the pool, which resets it
                raise
            self._keep_writer(conn)

    @contextmanager
    def quick_transaction(self) -> Iterator[DriverConnection]:
        """`transaction` for statements built for the driver (`driver.RowsInsert`,
        `exec_driver_sql`), straight on a driver connection: on SQLite the writers', on
        PostgreSQL a pooled one."""
        if self._writers is None:
            with (
                self._pooled_driver(autocommit=False) as raw,
                driver_transaction(self.engine.dialect, raw) as conn,
            ):
                yield conn
            return
        with self._writers.turn():
            writer = self._take_writer()
            try:
                with driver_transaction(self._write_engine.dialect, writer.connection) as conn:
                    yield conn
            except BaseException:
                writer.close()  # back to the pool, which resets it
                raise
            self._keep_writer(writer)

    def _take_writer(self) -> Connection:
        """The writers' connection (holding the writer's turn): the one kept since the last
        write transaction, or one from the pool. Taking a connection from the pool for each
        transaction and giving it back (which rolls it back again) cost about 55 µs of the
        95 of an empty transaction; and one connection for all writes keeps its page cache
        warm (a connection's cache is dropped when another has written since its last use)."""
        kept, self._kept_writer = self._kept_writer, None
        if kept is not None and not kept.closed and not kept.invalidated:
            return kept
        return self._write_engine.connect()

    def _keep_writer(self, writer: Connection) -> None:
        """Keep the writers' connection for the next transaction (a nested transaction's
        connection, if any, goes back to the pool)."""
        if self._kept_writer is None:
            self._kept_writer = writer
        else:
            writer.close()

    def _close_kept_writer(self) -> None:
        kept, self._kept_writer = self._kept_writer, None
        if kept is not None:
            kept.close()

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """On SQLite, hold the writer's turn (waiting for it) without a transaction."""
        if self._writers is None:
            yield
            return
        with self._writers.turn():
            yield

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
        """For a single SELECT, which is its own snapshot: no BEGIN and COMMIT (on SQLite
        each a call that hands the GIL over under load, on PostgreSQL a round trip each)."""
        if not self.is_sqlite:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            return
        with self.engine.connect() as conn:
            conn.execution_options(jobyard_read_only=True, jobyard_single_statement=True)
            yield conn

    @contextmanager
    def read_key(self) -> Iterator[KeyReads]:
        """For statements that each read one row by key (`.first()`), straight on the driver
        (see `key_reads`): on SQLite on the calling thread's own connection (see
        `thread_connections`), on PostgreSQL on a pooled one in autocommit."""
        if self._key_readers is None:
            began = time.monotonic()
            try:
                with self._pooled_driver(autocommit=True) as raw:
                    yield KeyReads(self.engine.dialect, raw)
            finally:
                if self._pg_on_this_host and time.monotonic() - began > QUICK_READ_SLOW_SECONDS:
                    self._quick_reads_paused_until = time.monotonic() + QUICK_READS_PAUSE_SECONDS
            return
        try:
            yield KeyReads(self.engine.dialect, self._key_readers.get())
        except DBAPIError:
            self._key_readers.discard()  # the next read starts on a fresh connection
            raise

    @contextmanager
    def _pooled_driver(self, *, autocommit: bool) -> Iterator[Any]:
        """A pooled PostgreSQL connection's driver connection, for statements run on it
        straight; in autocommit if asked, for reads by key (each SELECT is its own snapshot,
        with no BEGIN and COMMIT round trips). One a statement failed on is dropped (the pool
        opens another), not given back; when the server was gone, with every other
        connection the pool holds."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            pooled = self.engine.raw_connection()
        except dbapi_error as error:  # as `Engine.connect` would raise it: out of reach
            raise DBAPIError.instance(None, None, error, dbapi_error) from error
        raw: Any = pooled.driver_connection
        raw.autocommit = autocommit
        try:
            yield pooled
        except DBAPIError as error:
            pooled.invalidate()
            orig = error.orig
            if isinstance(orig, dbapi_error) and self.engine.dialect.is_disconnect(orig, raw, None):
                # As SQLAlchemy does when a statement finds the server gone: the pool's
                # other connections, open since before, went with it.
                self.engine.dispose()
            raise
        finally:
            if pooled.is_valid:
                raw.autocommit = False
            pooled.close()

    def key_reads_beside(self, conn: Connection | DriverConnection) -> KeyReads:
        """Reads by key inside the write transaction `conn`, on its own driver connection (on
        SQLite its page cache is warm from the writes before)."""
        if isinstance(conn, DriverConnection):
            return KeyReads(conn.dialect, conn.raw)
        return KeyReads(conn.dialect, conn.connection.driver_connection)

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
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._key_readers is not None:
            self._key_readers.close_all()
        self._close_kept_writer()
        self._write_engine.dispose()
        self.engine.dispose()
        if self.doorbell is not None:
            self.doorbell.close()
        if self._writers is not None and self._owns_writers:
            self._writers.close()


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
        with sqlite.deadline(conn, seconds):
            yield
        return
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
    yield  # after an error, the transaction's end restores it
    conn.exec_driver_sql("SET LOCAL statement_timeout = DEFAULT")


@contextmanager
def serial(conn: Connection) -> Iterator[None]:
    """Statements inside run without PostgreSQL's parallel workers: for a walk along an index
    that stops after a known number of rows, starting workers costs more than they save
    (a page merged from two walks of 25,000 rows: 15-17 ms with two, 7-8 ms without)."""
    if conn.dialect.name == "sqlite":
        yield
        return
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    yield  # after an error, the transaction's end restores it
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = DEFAULT")


def ran_out_of_time(exc: DBAPIError) -> bool:
    """Whether a statement failed because `time_limited` cut it short."""
    if isinstance(exc.orig, sqlite3.OperationalError):
        return str(exc.orig) == "interrupted"
    return getattr(exc.orig, "sqlstate", None) == PG_QUERY_CANCELED
