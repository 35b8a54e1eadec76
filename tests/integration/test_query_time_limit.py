"""A listing's statements run under the database's time limit, on both databases, and
nothing else does: a write, or the rest of a transaction after the listing, runs to its end.
And on PostgreSQL, statements in `serial` run without parallel workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.errors import QueryTooSlow
from jobyard.store import listing
from jobyard.store.db import Database, serial

LIMIT = 0.2


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, query_timeout=LIMIT)
    yield database
    database.dispose()


def counting_to(n: int) -> sa.Select[Any]:
    """A query that counts to `n` the slow way (a row at a time), on either database."""
    numbers = sa.select(sa.literal(1).label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select(numbers.c.i + 1).where(numbers.c.i < n))
    return sa.select(sa.func.count()).select_from(numbers)


def slower_than_the_limit(db: Database) -> sa.Select[Any]:
    """A statement that takes a few times the limit."""
    return counting_to(3_000_000) if db.is_sqlite else sa.select(sa.func.pg_sleep(0.6))


def test_a_listing_statement_past_the_limit_is_cut_short(db: Database) -> None:
    with db.read() as conn:
        started = time.monotonic()
        with pytest.raises(QueryTooSlow, match="took longer than the server allows"):
            listing.run(conn, counting_to(2 * 10**9))
        assert LIMIT <= time.monotonic() - started < LIMIT + 0.8
        # The transaction goes on: the cut-short statement was the only casualty.
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert QueryTooSlow().retry_after > 0


def test_a_listing_within_the_limit_runs(db: Database) -> None:
    with db.read() as conn:
        assert listing.run(conn, counting_to(1000))[0][0] == 1000


def test_the_limit_ends_with_the_listing(db: Database) -> None:
    """A bulk operation selects by filter inside its write transaction: what follows it in
    that transaction, and every write, runs without a limit."""
    with db.transaction() as conn:
        assert listing.run(conn, counting_to(10))[0][0] == 10
        started = time.monotonic()
        conn.execute(slower_than_the_limit(db)).all()
        assert time.monotonic() - started > LIMIT


def test_a_write_is_never_cut_short(db: Database) -> None:
    with db.transaction() as conn:
        started = time.monotonic()
        conn.execute(slower_than_the_limit(db)).all()
        assert time.monotonic() - started > LIMIT


def test_no_limit_when_the_setting_is_zero(database_url: str) -> None:
    unlimited = Database(database_url, query_timeout=0)
    try:
        with unlimited.read() as conn:
            started = time.monotonic()
            listing.run(conn, slower_than_the_limit(unlimited))
            assert time.monotonic() - started > LIMIT
    finally:
        unlimited.dispose()


@pytest.mark.postgres
def test_statements_in_serial_run_without_parallel_workers(database_url: str) -> None:
    """On PostgreSQL, `serial` turns parallel workers off for the rest of the statements
    inside it, then gives the transaction its setting back."""
    if database_url.startswith("sqlite"):
        pytest.skip("parallel workers are PostgreSQL's")
    database = Database(database_url)
    setting = sa.text("SHOW max_parallel_workers_per_gather")
    try:
        with database.read() as conn:
            before = conn.execute(setting).scalar_one()
            with serial(conn):
                inside = conn.execute(setting).scalar_one()
            after = conn.execute(setting).scalar_one()
    finally:
        database.dispose()
    assert inside == "0"
    assert before == after != "0"
