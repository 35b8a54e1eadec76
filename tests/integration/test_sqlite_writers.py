"""How a process writes to an SQLite file: its writes share one connection (whose page cache
survives from one write to the next), keep statement journals in memory, and leave the
write-ahead log's checkpoints to a thread of their own, which keeps the log bounded under a
steady stream of writes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobyard.store.db import Database
from jobyard.store.sqlite_checkpoints import Checkpointer

TEMP_STORE_MEMORY = 2
SQLITE_DEFAULT_AUTOCHECKPOINT = 1000


def _database(tmp_path: Path, *, background_checkpoints: bool) -> Database:
    db = Database(
        f"sqlite:///{tmp_path / 'writers.db'}", background_checkpoints=background_checkpoints
    )
    with db.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body)")
    return db


@contextmanager
def _opened(tmp_path: Path, *, background_checkpoints: bool) -> Iterator[Database]:
    """`_database`, disposed on the way out."""
    db = _database(tmp_path, background_checkpoints=background_checkpoints)
    try:
        yield db
    finally:
        db.dispose()


def _pragma(conn: sa.Connection, name: str) -> int:
    return int(conn.exec_driver_sql(f"PRAGMA {name}").scalar_one())


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "jobyard-sqlite-checkpoints"]


def test_one_connection_serves_the_writes_one_after_another(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=False) as db:
        drivers = []
        for _ in range(3):
            with db.transaction() as conn:
                drivers.append(conn.connection.driver_connection)
        with db.quick_transaction() as quick:
            quick.exec_driver_sql("INSERT INTO notes (body) VALUES ('quick')")
        with db.transaction() as conn:
            drivers.append(conn.connection.driver_connection)

        assert len({id(d) for d in drivers}) == 1


def _insert_then_repeat_an_id(db: Database) -> None:
    with db.quick_transaction() as quick:
        quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (2, 'undone')")
        quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'a repeated id')")


def test_a_failed_quick_write_leaves_nothing_and_the_next_writes_go_on(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=False) as db:
        with db.quick_transaction() as quick:
            quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'kept')")
        with pytest.raises(sa.exc.IntegrityError):
            _insert_then_repeat_an_id(db)
        with db.quick_transaction() as quick:
            quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (3, 'after')")
        with db.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (4, 'through SQLAlchemy')")
        with db.read() as conn:
            ids = conn.exec_driver_sql("SELECT id FROM notes ORDER BY id").scalars().all()
        assert ids == [1, 3, 4]


def test_a_failed_transaction_leaves_nothing_and_the_next_writes_go_on(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=False) as db:

        def repeat_an_id() -> None:
            with db.transaction() as conn:
                conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'undone')")
                conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'a repeated id')")

        with pytest.raises(sa.exc.IntegrityError):
            repeat_an_id()
        with db.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'after')")
        with db.quick_transaction() as quick:
            quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (2, 'quick')")
        with db.read() as conn:
            rows = conn.exec_driver_sql("SELECT id, body FROM notes ORDER BY id").all()
        assert [tuple(row) for row in rows] == [(1, "after"), (2, "quick")]


def test_writers_keep_statement_journals_in_memory_and_readers_do_not(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=False) as db:
        with db.transaction() as conn:
            assert _pragma(conn, "temp_store") == TEMP_STORE_MEMORY
        with db.read() as conn:
            assert _pragma(conn, "temp_store") != TEMP_STORE_MEMORY


def test_with_a_checkpointer_no_connection_checkpoints_as_it_commits(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=True) as db:
        with db.transaction() as conn:
            assert _pragma(conn, "wal_autocheckpoint") == 0
        with db.read() as conn:
            assert _pragma(conn, "wal_autocheckpoint") == 0
        assert len(_checkpoint_threads()) == 1
    assert _checkpoint_threads() == []


def test_without_one_connections_checkpoint_as_sqlite_does(tmp_path: Path) -> None:
    with _opened(tmp_path, background_checkpoints=False) as db:
        with db.transaction() as conn:
            assert _pragma(conn, "wal_autocheckpoint") == SQLITE_DEFAULT_AUTOCHECKPOINT
        assert _checkpoint_threads() == []


def test_a_checkpoint_copies_the_whole_log_while_writers_go_on(tmp_path: Path) -> None:
    db = _database(tmp_path, background_checkpoints=False)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with db.transaction() as conn:
                conn.exec_driver_sql("INSERT INTO notes (body) VALUES (randomblob(600))")

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(0.2)
        logged, copied = Checkpointer(db.engine, db.writer_turn).checkpoint()
    finally:
        stop.set()
        for writer in writers:
            writer.join()
        db.dispose()

    assert logged > 0
    assert copied == logged


def test_the_log_stays_bounded_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    """Commits landing while a checkpoint copies would keep the log from ever starting over,
    were the last of it not copied holding the writer's turn."""
    db = _database(tmp_path, background_checkpoints=True)
    wal = Path(f"{tmp_path / 'writers.db'}-wal")
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            with db.transaction() as conn:
                conn.exec_driver_sql("INSERT INTO notes (body) VALUES (randomblob(600))")
            written[0] += 1

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(3)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
        largest = os.stat(wal).st_size
        db.dispose()

    # Each note's commit adds at least a page to the log, so without its starting over the
    # log would hold a page for every note; it holds what an interval or two commits.
    pages = largest / 4096
    assert written[0] > 1_000, "too few writes to tell"
    assert pages < written[0] / 3
