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
) -> list[Any]:
    """The ids of one page of `filtered` (narrowed by the list's filters, with no order)
    sorted by `key`, ties by id in the same direction."""
    if page.limit is None:
        raise ValueError("a merged page needs a limit")
    query = merged_query(conn, filtered, key, descending=descending, id_column=id_column)
    return [row[0] for row in listing.run(conn, query.limit(page.limit).offset(page.offset))]


def merged_query(
    conn: Connection,
    filtered: Select[Any],
    key: ShadowedKey,
    *,
    descending: bool,
    id_column: ColumnElement[Any],
) -> Select[Any] | CompoundSelect[Any]:
    """The ids in the key's order (with no page): the shadow's order where no row differs,
    else the merge of both parts."""
    ids = filtered.with_only_columns(id_column).order_by(None)
    if not _any_differ(conn, ids, key):
        return ids.order_by(
            listing.directed(key.shadow, descending), listing.directed(id_column, descending)
        )
    differing = ids.add_columns(key.key.label(_KEY)).where(key.differs)
    same = ids.add_columns(key.shadow.label(_KEY)).where(not_(key.differs))
    sort_key: ColumnElement[Any] = literal_column(_KEY)
    key_id: ColumnElement[Any] = literal_column(id_column.key or "id")
    return union_all(differing, same).order_by(
        listing.directed(sort_key, descending), listing.directed(key_id, descending)
    )


def _any_differ(conn: Connection, ids: Select[Any], key: ShadowedKey) -> bool:
    # In the partial index's order, so that PostgreSQL reads it rather than scanning for a
    # row its statistics expect almost everywhere (they know nothing of `run_at <> created`).
    first = ids.where(key.differs).order_by(key.key, ids.selected_columns[0]).limit(1)
    return bool(listing.run(conn, first))
