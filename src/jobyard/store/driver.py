"""Statements the worker runs for every job, run straight on the database driver.

SQLAlchemy converts every parameter of every row in Python, through each column type's
processors (times to text on SQLite, JSON to text). For the few statements that record every
claim and every end, that was about a fifth of a worker's turn at the database. Here each
statement's SQL is built once for its shape and each column's conversion chosen once; all
other statements go through SQLAlchemy as usual.

On PostgreSQL many rows go in as one array per column (`unnest`), not as a VALUES list: the
statement is then the same text whatever the number of rows, so psycopg need not parse a
new one with a placeholder per value (it caches only statements of at most 50), and the
server prepares it once. A bulk launch of 5,000 jobs spent most of its time in that parsing.
For a few rows, a worker's turn, VALUES costs less (arrays are adapted in Python).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Column, Connection, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from jobyard import jsontext
from jobyard.repeats import map_shared
from jobyard.store.types import UTCDateTime, sqlite_time_text

# Both drivers cap the values of one statement (SQLite at 32,766, PostgreSQL at 65,535).
MAX_VALUES = 30_000

Convert = Callable[[Any], Any]


class DriverStatements(Protocol):
    """What runs statements written for the driver: a SQLAlchemy `Connection`, or on SQLite
    a transaction straight on the driver (`driver_transaction.DriverConnection`)."""

    dialect: Dialect

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any: ...


def _converter(column: Column[Any], sqlite: bool) -> Convert | None:
    """How a Python value becomes what the driver takes for this column (None: as it is)."""
    if isinstance(column.type, UTCDateTime):
        return sqlite_time_text if sqlite else None  # psycopg takes aware datetimes
    if isinstance(column.type, JSON):
        return jsontext.dumps if sqlite else Jsonb
    return None


def _parameter_marker(sqlite: bool) -> str:
    return "?" if sqlite else "%s"


# From this many rows on, PostgreSQL gets arrays (measured: for 4 rows VALUES costs half the
# CPU; from 16 they cost the same, and arrays a third less for 64).
ARRAYS_FROM_ROWS = 32


class RowsInsert:
    """INSERT of many rows in one statement, given as tuples in `columns` order; with
    `returning`, the returned rows (in no particular order).

    `ordered`: the new rows get ascending ids in the order of `rows`, so their ids are the
    returned ids sorted (SQLite does so for VALUES under its write lock; on PostgreSQL only
    the ordered SELECT from the arrays promises it)."""

    def __init__(self, table: Table, columns: Sequence[str], returning: Sequence[str] = ()):
        self.table = table
        self.columns = tuple(columns)
        self.returning = tuple(returning)
        self._per_statement = max(1, MAX_VALUES // len(self.columns))

    def execute_mappings(
        self, conn: DriverStatements, rows: Sequence[Mapping[str, Any]], *, ordered: bool = False
    ) -> list[Any]:
        """The same, for rows given as mappings by column name."""
        if len(self.columns) == 1:
            (name,) = self.columns
            values: list[Sequence[Any]] = [(row[name],) for row in rows]
        else:
            pick = operator.itemgetter(*self.columns)  # a tuple per row, in C
            values = [pick(row) for row in rows]
        return self.execute(conn, values, ordered=ordered)

    def execute(
        self, conn: DriverStatements, rows: Sequence[Sequence[Any]], *, ordered: bool = False
    ) -> list[Any]:
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite and (ordered or len(rows) >= ARRAYS_FROM_ROWS):
            return self._execute_as_arrays(conn, rows)
        conversions = self._conversions(sqlite)
        width = len(self.columns)
        returned: list[Any] = []
        for start in range(0, len(rows), self._per_statement):
            chunk = rows[start : start + self._per_statement]
            values: list[Any] = []
            for row in chunk:
                values.extend(row)
            for index, convert in conversions:
                values[index::width] = _converted(convert, values[index::width])
            result = conn.exec_driver_sql(self._sql(len(chunk), sqlite), tuple(values))
            if self.returning:
                returned.extend(result.all())
        return returned

    def _execute_as_arrays(
        self, conn: DriverStatements, rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        if not rows:
            return []
        arrays = [list(values) for values in zip(*rows, strict=True)]
        for index, convert in self._conversions(False):
            arrays[index] = _converted(convert, arrays[index])
        result = conn.exec_driver_sql(self._unnest_sql(), tuple(arrays))
        return list(result.all()) if self.returning else []

    @functools.cache  # noqa: B019 (a few statements, each living as long as the program)
    def _unnest_sql(self) -> str:
        pg = postgresql.dialect()  # type: ignore[no-untyped-call]
        arrays = ", ".join(
            f"%s::{self.table.c[name].type.compile(dialect=pg)}[]" for name in self.columns
        )
        names = _quoted(self.columns)
        sql = (
            f"INSERT INTO {_quoted([self.table.name])} ({names}) SELECT {names} "
            f"FROM unnest({arrays}) WITH ORDINALITY AS given ({names}, given_order) "
            "ORDER BY given_order"
        )
        if self.returning:
            sql += f" RETURNING {_quoted(self.returning)}"
        return sql

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


def _converted(convert: Convert, values: Sequence[Any]) -> list[Any]:
    """Each value converted; one that is the very object of one before it takes that one's
    conversion. The rows of a bulk launch share a few jobs' objects (7 JSON documents and 3
    times a row: 35,000 conversions for 5,000 jobs), and a turn's rows share its time."""
    return map_shared(convert, values)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def sql(conn: Connection, text: str) -> str:
    """SQL written with `?` parameter markers, as this connection's driver takes it."""
    return text if conn.dialect.name == "sqlite" else text.replace("?", "%s")


def time_value(conn: Connection, value: datetime | None) -> Any:
    """A time as this connection's driver takes it (psycopg adapts aware datetimes)."""
    return sqlite_time_text(value) if conn.dialect.name == "sqlite" else value
