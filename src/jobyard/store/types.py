"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Dialect, Text, bindparam
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine

from jobyard import jsontext


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, times are converted to and from their text form in one step (which the
    # two methods above then never see): the generic path (TypeDecorator, then SQLite's own
    # regex-based DATETIME) costs several times more, and workers convert several times
    # for every job they run.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return sqlite_time_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return sqlite_time_value
        return super().result_processor(dialect, coltype)


@functools.lru_cache(maxsize=64)  # a batch of rows mostly shares a few times (its `now`)
def sqlite_time_text(value: datetime | None) -> str | None:
    """An aware time as SQLite keeps it: naive UTC text, `YYYY-MM-DD HH:MM:SS.ffffff`
    (SQLAlchemy's own format, so rows written either way compare as text)."""
    if value is None:
        return None
    return _as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} refused: store aware UTC times only")
    return value.astimezone(UTC)


def sqlite_time_value(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def json_type() -> TypeEngine[Any]:
    """JSON everywhere, JSONB on PostgreSQL (indexable, with containment operators)."""
    return JSON().with_variant(JSONB(), "postgresql")


class IdList(TypeDecorator[Sequence[int]]):
    """Ids bound as one parameter: JSON text on SQLite (read back with json_each), an array
    on PostgreSQL."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Sequence[int] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        ids = [int(i) for i in value]
        return jsontext.dumps(ids) if dialect.name == "sqlite" else ids


class _InIds(ColumnElement[bool]):
    """`column IN <ids>` with the ids as one parameter (see `in_ids`)."""

    inherit_cache = True
    type = Boolean()
    # A comparison, not a boolean value: without this SQLAlchemy writes `... = 1` after it on
    # SQLite, and the index on the column can no longer be used (every call scans the table).
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], ids: BindParameter[Any]) -> None:
        self.column = column
        self.ids = ids


@compiles(_InIds)
def _in_ids_sqlite(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(_InIds, "postgresql")
def _in_ids_postgresql(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} = ANY({ids})"


def in_ids(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`column IN (...)` for a list of ids bound to `name`, as a statement that stays the same
    whatever the list's length: built and prepared once, where an expanding IN list is
    rendered anew for every execution (and prepared anew by SQLite for every length)."""
    return _InIds(column, bindparam(name, type_=IdList()))


class json_integer(FunctionElement[int]):  # noqa: N801 (an SQL function, named like one)
    """An integer read from the text at a JSON path, NULL where that text is not one.

    A stored value is free-form: PostgreSQL's cast of `"abc"` or `1.5` to an integer fails
    the whole query, so that one job's context would break every filter on the field."""

    type = BigInteger()
    inherit_cache = True
    name = "json_integer"


@compiles(json_integer)
def _json_integer(element: json_integer, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    return f"CAST({compiler.process(text, **kw)} AS INTEGER)"  # SQLite's cast never fails


@compiles(json_integer, "postgresql")
def _json_integer_pg(element: json_integer, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = element.clauses
    value = compiler.process(text, **kw)
    return f"CASE WHEN {value} ~ '^-?[0-9]{{1,18}}$' THEN CAST({value} AS BIGINT) END"
