"""Rows read back as the domain's records. Pydantic builds a record from the columns named
like its fields, converting what is stored (JSON arrays, status strings, SQLite's 0/1) to
what the record holds (tuples, enums, booleans); columns the record has no field for are
ignored. A record whose columns need more than that (computed fields, lenient JSON) is read
by a function of its own next to its queries."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import Row

from jobyard.store.key_reads import KeyRow

T = TypeVar("T")


class RecordReader(Generic[T]):
    """Reads rows as records of one dataclass (its schema built once)."""

    def __init__(self, record: type[T]) -> None:
        self._adapter = TypeAdapter(record)

    def __call__(self, row: Row[Any] | KeyRow, prefix: str = "") -> T:
        """The record in `row`; with a `prefix`, from the columns named `prefix` + field
        (a row that joins two tables)."""
        values = row._mapping
        if prefix:
            cut = len(prefix)
            return self._adapter.validate_python(
                {key[cut:]: value for key, value in values.items() if key.startswith(prefix)}
            )
        return self._adapter.validate_python(dict(values))
