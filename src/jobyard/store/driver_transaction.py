"""A write transaction straight on the driver, for the single launch; and the statements of
any transaction run on its driver connection (see `direct`).

A launch's statements through a SQLAlchemy `Connection` (pool events, execution contexts,
result metadata, the transaction's bookkeeping) cost about three times what SQLite itself
takes to run them; on PostgreSQL the result metadata alone made psycopg build a description
of every column at each statement. `DriverConnection` stands in for the `Connection` where a
transaction runs only statements built for the driver (`driver.RowsInsert`), and the
transaction begins, commits and rolls back on the pooled DBAPI connection itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from psycopg.pq import ExecStatus
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection


class DriverResult:
    """What a statement gave: its rows, how many rows it changed, and its columns' type
    codes (PostgreSQL's; None on SQLite)."""

    def __init__(
        self, rows: list[Any], rowcount: int = -1, codes: tuple[Any, ...] | None = None
    ) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.codes = codes

    def all(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def _type_codes(cursor: Any) -> tuple[Any, ...] | None:
    """The type codes of a result's columns on PostgreSQL, read from libpq's result
    (psycopg's `description` would build an object for every column); None on SQLite."""
    result = getattr(cursor, "pgresult", None)
    if result is None:
        return None
    return tuple(result.ftype(index) for index in range(result.nfields))


def _fetched(cursor: Any) -> list[Any]:
    """Every row a statement gave; none for one that gives none (psycopg refuses to fetch
    from it, where SQLite gives an empty list)."""
    result = getattr(cursor, "pgresult", None)
    if result is not None and result.status != ExecStatus.TUPLES_OK:
        return []
    rows: list[Any] = cursor.fetchall()
    return rows


class DriverConnection:
    """What `RowsInsert` and the launch's other statements need of a `Connection`."""

    def __init__(self, dialect: Dialect, raw: Any) -> None:
        self.dialect = dialect
        self.raw = raw  # the pooled DBAPI connection, for reads by key inside the transaction

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> DriverResult:
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement, parameters or ())
            return DriverResult(_fetched(cursor), cursor.rowcount, _type_codes(cursor))
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                statement, parameters, exc, self.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()


@contextmanager
def driver_transaction(dialect: Dialect, raw: PoolProxiedConnection) -> Iterator[DriverConnection]:
    """A transaction on the pooled connection `raw` (which stays the caller's to give back):
    commit on a clean exit, roll back on any exception. On SQLite, BEGIN IMMEDIATE (the
    caller holds the writer's turn); psycopg begins one at the first statement itself."""
    conn = DriverConnection(dialect, raw)
    sqlite = dialect.name == "sqlite"
    if sqlite:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # A rollback that fails too leaves the connection to its owner, who drops it.
        with suppress(dialect.loaded_dbapi.Error):
            raw.rollback()
        raise
    if sqlite:
        conn.exec_driver_sql("COMMIT")
        return
    try:
        raw.commit()
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance("COMMIT", None, exc, dialect.loaded_dbapi.Error) from exc
