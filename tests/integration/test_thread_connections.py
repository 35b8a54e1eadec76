"""Reads by key on SQLite run on a connection each thread keeps (`store/thread_connections`):
one per thread, reused from one read to the next, holding no snapshot between reads, closed
when its thread ends or the database is disposed, and replaced after an error. Inside a write
transaction they run on the transaction's own connection."""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from jobyard.store.db import Database
from jobyard.store.key_reads import KeyReads

NOTES = sa.table("notes", sa.column("id", sa.Integer), sa.column("body", sa.String))
NOTE_BY_ID = sa.select(NOTES.c.body).where(NOTES.c.id == sa.bindparam("id"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'kept.db'}")
    with database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (1, 'first')")
    try:
        yield database
    finally:
        database.dispose()


def _raw(reads: Any) -> Any:
    assert isinstance(reads, KeyReads)
    return reads._raw


def _body(db: Database, note: int) -> str | None:
    with db.read_key() as reads:
        row = reads.execute(NOTE_BY_ID, {"id": note}).first()
    return None if row is None else str(row.body)


def _closed(raw: sqlite3.Connection) -> bool:
    try:
        raw.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def _in_thread(db: Database) -> sqlite3.Connection:
    """The connection a new thread's read by key used (the thread has ended)."""
    found: list[sqlite3.Connection] = []

    def read() -> None:
        with db.read_key() as reads:
            found.append(_raw(reads))
            reads.execute(NOTE_BY_ID, {"id": 1}).first()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return found[0]


def test_a_thread_keeps_one_connection_and_another_thread_has_its_own(db: Database) -> None:
    with db.read_key() as first, db.read_key() as second:
        assert _raw(first) is _raw(second)
        mine = _raw(first)
    other = _in_thread(db)
    assert other is not mine
    with db.read_key() as again:
        assert _raw(again) is mine


def test_a_kept_connection_holds_no_snapshot_between_reads(db: Database) -> None:
    assert _body(db, 1) == "first"
    with db.read_key() as reads:
        assert not _raw(reads).in_transaction
    with db.transaction() as conn:
        conn.exec_driver_sql("UPDATE notes SET body = 'changed' WHERE id = 1")
        conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (2, 'second')")
    assert _body(db, 1) == "changed"
    assert _body(db, 2) == "second"
    # A checkpoint copies the whole log: no reader holds an old snapshot of it.
    assert db.sqlite_file is not None
    checkpointing = sqlite3.connect(db.sqlite_file, isolation_level=None)
    try:
        busy, _, _ = checkpointing.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpointing.close()
    assert busy == 0


def test_a_threads_connection_closes_when_the_thread_ends(db: Database) -> None:
    other = _in_thread(db)
    gc.collect()
    assert _closed(other)


def test_dispose_closes_every_kept_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'disposed.db'}")
    with database.read_key() as reads:
        mine = _raw(reads)
    database.dispose()
    assert _closed(mine)


def test_after_an_error_the_thread_reads_on_a_fresh_connection(db: Database) -> None:
    broken = sa.select(sa.column("nothing")).select_from(sa.table("no_such_table"))
    with db.read_key() as reads:
        failed = _raw(reads)
    with pytest.raises(DBAPIError), db.read_key() as reads:
        reads.execute(broken, {}).first()
    assert _closed(failed)
    assert _body(db, 1) == "first"
    with db.read_key() as reads:
        assert _raw(reads) is not failed


def test_inside_a_write_transaction_reads_see_its_own_writes(db: Database) -> None:
    with db.quick_transaction() as quick:
        quick.exec_driver_sql("INSERT INTO notes (id, body) VALUES (3, 'not yet committed')")
        row = db.key_reads_beside(quick).execute(NOTE_BY_ID, {"id": 3}).first()
        assert row is not None
        assert row.body == "not yet committed"
        assert _body(db, 3) is None  # other connections see the committed file
    with db.transaction() as conn:
        conn.exec_driver_sql("INSERT INTO notes (id, body) VALUES (4, 'in a Connection')")
        row = db.key_reads_beside(conn).execute(NOTE_BY_ID, {"id": 4}).first()
        assert row is not None
        assert row.body == "in a Connection"
