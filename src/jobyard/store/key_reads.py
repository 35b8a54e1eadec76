"""One-row reads by key without SQLAlchemy's `Connection`.

Every request reads its token by hash, and most then read one object by id. On SQLite such a
SELECT takes about 5 µs in the driver, and its way through a SQLAlchemy `Connection` (pool
checkout events, execution context, result metadata, reset on return) another 60 to 80 µs:
most of a request's own cost. On PostgreSQL the same way costs more of the server's CPU than
the round trip itself (psycopg builds a description of every column for SQLAlchemy's result
metadata at each statement). `KeyReads` runs the same statements, compiled by SQLAlchemy
once, on a DBAPI connection it is given (on SQLite a thread's own, see
`thread_connections`, or a write transaction's; on PostgreSQL a pooled one in autocommit),
and converts each value with the column type's own result processor, so a row reads exactly
as it does through a `Connection`. It answers `.first()` only: anything else goes through a
`Connection`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select

from jobyard.store.direct import ResultProcessors
from jobyard.store.driver_transaction import DriverConnection

Processor = Callable[[Any], Any] | None  # SQLAlchemy's bind or result processor


class KeyRow(dict[str, Any]):
    """A row read by `KeyReads`: its values by column name, as items, as attributes and as
    `_mapping` (what the store's readers use of a SQLAlchemy `Row`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> Mapping[str, Any]:
        return self


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: Sequence[tuple[str, Processor]]  # parameter names in order, with their processors
    named: bool  # parameters passed by name (psycopg's style) rather than by position
    names: Sequence[str]  # result column names
    processors: ResultProcessors


@functools.lru_cache(maxsize=256)
def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    positional = compiled.positiontup
    names = positional if positional is not None else list(compiled.binds)
    binds = [
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names
    ]
    columns = statement.selected_columns
    return _Compiled(
        str(compiled),
        binds,
        named=positional is None,
        names=[str(column.key) for column in columns],
        processors=ResultProcessors(
            dialect, tuple(column.type.dialect_impl(dialect) for column in columns)
        ),
    )


class _First:
    def __init__(self, row: KeyRow | None) -> None:
        self._row = row

    def first(self) -> KeyRow | None:
        return self._row


class KeyReads:
    """A stand-in for a `Connection` whose statements each read one row by key, on the DBAPI
    connection `raw` (which stays its owner's to close)."""

    def __init__(self, dialect: Dialect, raw: Any) -> None:
        self._dialect = dialect
        self._raw = raw

    def execute(self, statement: Select[Any], parameters: Mapping[str, Any]) -> _First:
        compiled = _compile(statement, self._dialect)
        converted = [
            (name, processor(parameters[name]) if processor else parameters[name])
            for name, processor in compiled.binds
        ]
        values = dict(converted) if compiled.named else [value for _, value in converted]
        result = DriverConnection(self._dialect, self._raw).exec_driver_sql(compiled.sql, values)
        found = next(iter(result), None)
        if found is None:
            return _First(None)
        processors = compiled.processors(result.codes)
        return _First(
            KeyRow(
                (name, processor(value) if processor else value)
                for name, processor, value in zip(compiled.names, processors, found, strict=True)
            )
        )
