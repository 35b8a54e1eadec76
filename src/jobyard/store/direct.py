"""SQLAlchemy Core statements run straight on the driver, for the engine's turns.

SQLAlchemy's `Connection.execute` costs about 30 µs a statement before the database does
anything (SQLite itself then takes 2 µs for a small one), and a worker's turn at the
database runs a dozen statements for every claim and end. A `DirectStatement` is written as
any other Core statement, compiled once per dialect, and run through `exec_driver_sql`, its
parameters converted by their types' bind processors and its rows by the result processors
(which is what `execute` does, minus the rest). It runs on the transaction's own driver
connection (`direct`): the same transaction, without SQLAlchemy in between (on PostgreSQL
also without the result metadata for which psycopg described every column).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeEngine

from jobyard.store.driver import Convert
from jobyard.store.driver_transaction import DriverConnection, DriverResult


def direct(conn: Connection | DriverConnection) -> DriverConnection:
    """Where to run driver statements of this transaction: its driver connection itself."""
    if isinstance(conn, DriverConnection):
        return conn
    return DriverConnection(conn.dialect, conn.connection)


@dataclass(frozen=True)
class ResultProcessors:
    """Each result column's processor, by the driver's type codes of the columns (None
    where the driver gives none, as SQLite's): PostgreSQL's for numbers depend on the code."""

    dialect: Dialect
    types: tuple[TypeEngine[Any], ...]  # each result column's, as the dialect has it
    _found: dict[tuple[Any, ...] | None, tuple[Convert | None, ...]] = field(
        default_factory=dict, compare=False
    )

    def __call__(self, codes: tuple[Any, ...] | None) -> tuple[Convert | None, ...]:
        found = self._found.get(codes)
        if found is None:
            given = codes if codes is not None else (None,) * len(self.types)
            found = tuple(
                kind.result_processor(self.dialect, code)
                for kind, code in zip(self.types, given, strict=True)
            )
            self._found[codes] = found
        return found


@dataclass(frozen=True)
class _Compiled:
    dialect: Dialect
    sql: str
    positional: tuple[str, ...] | None  # the parameters' order, or None for named ones
    fixed: Mapping[str, Any]  # values written into the statement (its literals)
    binds: Mapping[str, Convert | None]
    row: Callable[..., Any] | None  # a row's type, with the result's column names
    processors: ResultProcessors


class DirectStatement:
    """A Core statement, run on the driver with `execute` (see the module's note)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, conn: DriverConnection, params: Mapping[str, Any]) -> DriverResult:
        """Run it with these parameters (by name); the driver's result (`rowcount`, rows)."""
        compiled = self._compile(conn.dialect)
        values = _values(compiled, params)
        if compiled.positional is None:
            return conn.exec_driver_sql(compiled.sql, values)
        return conn.exec_driver_sql(compiled.sql, tuple(values[n] for n in compiled.positional))

    def rows(self, conn: DriverConnection, params: Mapping[str, Any]) -> list[Any]:
        """Run a query; its rows as named tuples, each value as `execute` would give it."""
        result = self.execute(conn, params)
        return _rows(self._compile(conn.dialect), result, result.codes)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled


def _values(compiled: _Compiled, params: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(compiled.fixed)
    for name, value in params.items():
        convert = compiled.binds[name]
        values[name] = value if convert is None else convert(value)
    return values


def _rows(
    compiled: _Compiled, found: Iterable[Sequence[Any]], codes: tuple[Any, ...] | None
) -> list[Any]:
    if compiled.row is None:
        raise TypeError("the statement returns no rows")
    make, results = compiled.row, compiled.processors(codes)
    return [
        make(*(v if f is None else f(v) for f, v in zip(results, raw, strict=True)))
        for raw in found
    ]


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for name, bind in compiled.binds.items()
    }
    fixed = {
        name: convert(bind.value) if (convert := binds[name]) else bind.value
        for name, bind in compiled.binds.items()
        if not bind.required and bind.callable is None
    }
    columns: Sequence[Any] = getattr(statement, "selected_columns", ())
    row = namedtuple("Row", [c.name for c in columns]) if columns else None
    types = tuple(c.type.dialect_impl(dialect) for c in columns)
    positional = tuple(compiled.positiontup) if compiled.positional else None
    processors = ResultProcessors(dialect, types)
    return _Compiled(dialect, compiled.string, positional, fixed, binds, row, processors)
