"""A page of a list sorted by a key that equals another, indexed key on nearly every row.

A job is due when it is launched: its `run_at` is its `created` unless it was launched for
later or is waiting to be retried. An index of `run_at` would cost every launch; instead a
partial index holds only the jobs whose key differs from its shadow (a launch due at once
writes nothing to it), and a page merges the two in order: the differing rows along that
index, the others along the shadow's index, as their own key. Where no row differs, the
page is the shadow's order itself.
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
    not_,
    union_all,
)

from jobyard.domain.paging import PageRequest
from jobyard.store import listing
from jobyard.store.db import serial

_KEY = "sort_key"


@dataclass(frozen=True)
class ShadowedKey:
    """`key` equals `shadow` wherever `differs` (a partial index's condition) is false."""

    key: ColumnElement[Any]
    shadow: ColumnElement[Any]
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
    """The ids in the key's order (with no page): the shadow's order where no row differs,
    else the merge of both parts, each read in order no further than `reach` rows if
    given."""
    ids = filtered.with_only_columns(id_column).order_by(None)
    if not _any_differ(conn, ids, key):
        return ids.order_by(
            listing.directed(key.shadow, descending), listing.directed(id_column, descending)
        )
    differing = ids.add_columns(key.key.label(_KEY)).where(key.differs)
    same = ids.add_columns(key.shadow.label(_KEY)).where(not_(key.differs))
    if reach is not None:
        differing = _first(differing, key.key, id_column, descending, reach)
        same = _first(same, key.shadow, id_column, descending, reach)
    sort_key: ColumnElement[Any] = literal_column(_KEY)
    key_id: ColumnElement[Any] = literal_column(id_column.key or "id")
    return union_all(differing, same).order_by(
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
