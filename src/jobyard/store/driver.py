"""Statements the worker runs for every job, run straight on the database driver.

SQLAlchemy converts every parameter of every row in Python, through each column type's
processors (times to text on SQLite, JSON to text). For the few statements that record every
claim and every end, that was about a fifth of a worker's turn at the database. Here each
statement's SQL is built once for its shape and each column's conversion chosen once; all
other statements go through SQLAlchemy as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Column, Connection, Table

from jobyard import jsontext
from jobyard.store.types import UTCDateTime, sqlite_time_text

# Both drivers cap the values of one statement (SQLite at 32,766, PostgreSQL at 65,535).
MAX_VALUES = 30_000

Convert = Callable[[Any], Any]


def _converter(column: Column[Any], sqlite: bool) -> Convert | None:
    """How a Python value becomes what the driver takes for this column (None: as it is)."""
    if isinstance(column.type, UTCDateTime):
        return sqlite_time_text if sqlite else None  # psycopg takes aware datetimes
    if isinstance(column.type, JSON):
        return jsontext.dumps if sqlite else Jsonb
    return None


def _parameter_marker(sqlite: bool) -> str:
    return "?" if sqlite else "%s"


class RowsInsert:
    """INSERT of many rows in one statement, given as tuples in `columns` order; with
    `returning`, the returned rows (in no particular order)."""

    def __init__(self, table: Table, columns: Sequence[str], returning: Sequence[str] = ()):
        self.table = table
        self.columns = tuple(columns)
        self.returning = tuple(returning)
        self._per_statement = max(1, MAX_VALUES // len(self.columns))

    def execute_mappings(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The same, for rows given as mappings by column name."""
        return self.execute(conn, [tuple(row[c] for c in self.columns) for row in rows])

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        sqlite = conn.dialect.name == "sqlite"
        conversions = self._conversions(sqlite)
        width = len(self.columns)
        returned: list[Any] = []
        for start in range(0, len(rows), self._per_statement):
            chunk = rows[start : start + self._per_statement]
            values: list[Any] = []
            for row in chunk:
                values.extend(row)
            for index, convert in conversions:
                values[index::width] = map(convert, values[index::width])
            result = conn.exec_driver_sql(self._sql(len(chunk), sqlite), tuple(values))
            if self.returning:
                returned.extend(result.all())
        return returned

    @functools.cache  # noqa: B019 (a few statements, each living as long as the program)
    def _conversions(self, sqlite: bool) -> list[tuple[int, Convert]]:
        found = [(i, _converter(self.table.c[name], sqlite)) for i, name in enumerate(self.columns)]
        return [(i, convert) for i, convert in found if convert is not None]

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def _sql(self, rows: int, sqlite: bool) -> str:
        one = "(" + ", ".join([_parameter_marker(sqlite)] * len(self.columns)) + ")"
        sql = (
            f"INSERT INTO {_quoted([self.table.name])} ({_quoted(self.columns)}) "
            f"VALUES {', '.join([one] * rows)}"
        )
        if self.returning:
            sql += f" RETURNING {_quoted(self.returning)}"
        return sql


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def sql(conn: Connection, text: str) -> str:
    """SQL written with `?` parameter markers, as this connection's driver takes it."""
    return text if conn.dialect.name == "sqlite" else text.replace("?", "%s")


def time_value(conn: Connection, value: datetime | None) -> Any:
    """A time as this connection's driver takes it (psycopg adapts aware datetimes)."""
    return sqlite_time_text(value) if conn.dialect.name == "sqlite" else value
