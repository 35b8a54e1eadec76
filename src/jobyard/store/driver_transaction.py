"""A write transaction on SQLite straight on the driver, for the single launch.

A launch's statements through a SQLAlchemy `Connection` (pool events, execution contexts,
result metadata, the transaction's bookkeeping) cost about three times what SQLite itself
takes to run them. `DriverConnection` stands in for the `Connection` where a transaction
runs only statements built for the driver (`driver.RowsInsert`), and the transaction
begins, commits and rolls back on the pooled DBAPI connection itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection


class DriverResult:
    """What a statement gave: its rows, and how many rows it changed."""

    def __init__(self, rows: list[Any], rowcount: int = -1) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class DriverConnection:
    """What `RowsInsert` and the launch's other statements need of a `Connection`."""

    def __init__(self, dialect: Dialect, raw: Any) -> None:
        self.dialect = dialect
        self.raw = raw  # the pooled DBAPI connection, for reads by key inside the transaction

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> DriverResult:
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement, parameters or ())
            return DriverResult(cursor.fetchall(), cursor.rowcount)
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                statement, parameters, exc, self.dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()


@contextmanager
def driver_transaction(dialect: Dialect, raw: PoolProxiedConnection) -> Iterator[DriverConnection]:
    """BEGIN IMMEDIATE on the pooled connection `raw` (which stays the caller's to give back);
    commit on a clean exit, roll back on any exception. The caller holds the writer's turn."""
    conn = DriverConnection(dialect, raw)
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        raw.rollback()
        raise
    conn.exec_driver_sql("COMMIT")
