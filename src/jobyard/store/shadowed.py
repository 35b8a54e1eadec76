"""A page of a list sorted by a key that equals another, indexed key on nearly every row.

A job is due when it is launched: its `run_at` is its `created` unless it was launched for
later or is waiting to be retried. An index of `run_at` would cost every launch; instead a
partial index holds only the jobs whose key differs from its shadow (a launch due at once
writes nothing to it), and a page merges the two in order: the differing rows along that
index, the others along the shadow's index, as their own key. Where no row differs, the
page is the shadow's order itself. A key may have several shadows, each where its own
condition holds (a job's `updated` is its `finished` once ended, its `created` while it
waits untouched since its launch): the page merges them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    literal_column,
    union_all,
)

from jobyard.domain.paging import PageRequest
from jobyard.store import listing
from jobyard.store.db import serial

_KEY = "sort_key"


@dataclass(frozen=True)
class Shadow:
    """Where `holds` (which an index of `column` answers), the key equals `column`."""

    column: ColumnElement[Any]
    holds: ColumnElement[bool]


@dataclass(frozen=True)
class ShadowedKey:
    """`key` equals one of its `shadows` wherever `differs` (a partial index's condition)
    is false: the shadows' conditions and `differs` split the rows between them."""

    key: ColumnElement[Any]
    shadows: tuple[Shadow, ...]
    differs: ColumnElement[bool]


def page_ids(
    conn: Connection,
    filtered: Select[Any],
    key: ShadowedKey,
    *,
    descending: bool,
    page: PageRequest,
    id_column: ColumnElement[Any],
    pg: bool,
) -> list[Any]:
    """The ids of one page of `filtered` (narrowed by the list's filters, with no order)
    sorted by `key`, ties by id in the same direction."""
    if page.limit is None:
        raise ValueError("a merged page needs a limit")
    # PostgreSQL's planner sorts the two parts' rows rather than merging their walks (it
    # cannot tell how few rows differ): each part is read only as far as the page reaches.
    reach = page.offset + page.limit if pg else None
    query = merged_query(
        conn, filtered, key, descending=descending, id_column=id_column, reach=reach
    )
    with serial(conn):
        rows = listing.run(conn, query.limit(page.limit).offset(page.offset))
    return [row[0] for row in rows]


def merged_query(
    conn: Connection,
    filtered: Select[Any],
    key: ShadowedKey,
    *,
    descending: bool,
    id_column: ColumnElement[Any],
    reach: int | None = None,
) -> Select[Any] | CompoundSelect[Any]:
    """The ids in the key's order (with no page): the merge of the shadows' parts (a
    shadow's order alone, where it is the only one), with the differing rows' if any
    differ; each read in order no further than `reach` rows if given."""
    ids = filtered.with_only_columns(id_column).order_by(None)
    parts = [(shadow.column, ids.where(shadow.holds)) for shadow in key.shadows]
    if _any_differ(conn, ids, key):
        parts.append((key.key, ids.where(key.differs)))
    if len(parts) == 1:
        ((column, part),) = parts
        return part.order_by(
            listing.directed(column, descending), listing.directed(id_column, descending)
        )
    labelled = []
    for column, part in parts:
        with_key = part.add_columns(column.label(_KEY))
        if reach is not None:
            with_key = _first(with_key, column, id_column, descending, reach)
        labelled.append(with_key)
    sort_key: ColumnElement[Any] = literal_column(_KEY)
    key_id: ColumnElement[Any] = literal_column(id_column.key or "id")
    return union_all(*labelled).order_by(
        listing.directed(sort_key, descending), listing.directed(key_id, descending)
    )


def _first(
    part: Select[Any],
    sort_key: ColumnElement[Any],
    id_column: ColumnElement[Any],
    descending: bool,
    rows: int,
) -> Select[Any]:
    return part.order_by(
        listing.directed(sort_key, descending), listing.directed(id_column, descending)
    ).limit(rows)


def _any_differ(conn: Connection, ids: Select[Any], key: ShadowedKey) -> bool:
    # In the partial index's order, so that PostgreSQL reads it rather than scanning for a
    # row its statistics expect almost everywhere (they know nothing of `run_at <> created`).
    first = ids.where(key.differs).order_by(key.key, ids.selected_columns[0]).limit(1)
    return bool(listing.run(conn, first))
