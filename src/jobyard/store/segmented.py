"""A page of a list sorted by a key whose values are nearly all one, read in segments.

Nearly every job has priority 0, no config, no `begin_at`: an index of such a key would cost
every launch and serve a sort almost no one asks for. Instead a partial index holds only the
jobs with another value (a launch of the usual value writes nothing to it), and the list is
read as its segments in order: the values below the usual one along that index, the usual
value in id order along the customer's id index, the values above it along the partial index
again. Each segment is counted (the usual one is the total less the others, which are
small), and a page reads only the segments it falls in, each with its own offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, union_all

from jobyard.domain.paging import PageRequest
from jobyard.store import listing


@dataclass(frozen=True)
class Segment:
    """The rows of one stretch of the key's values: `condition` picks them; `key` orders them
    (as an index holds it), or None where they all have one value and go in id order."""

    condition: ColumnElement[bool]
    key: ColumnElement[Any] | None = None


@dataclass(frozen=True)
class SegmentedKey:
    """A sort key's segments in ascending order; `usual` is the index of the one with the
    usual value (a segment of one value: its `key` is None), which is never counted."""

    segments: tuple[Segment, ...]
    usual: int


@dataclass(frozen=True)
class Slice:
    """The part of one segment a page takes: `limit` rows after skipping `offset`."""

    segment: int
    offset: int
    limit: int


def slices(counts: Sequence[int], offset: int, limit: int) -> list[Slice]:
    """Which rows of which segments (sized `counts`, in the page's order) make up the page
    of `limit` rows after `offset`."""
    taken: list[Slice] = []
    for index, count in enumerate(counts):
        if limit <= 0:
            break
        if offset >= count:
            offset -= count
            continue
        size = min(limit, count - offset)
        taken.append(Slice(index, offset, size))
        offset, limit = 0, limit - size
    return taken


def page_ids(
    conn: Connection,
    filtered: Select[Any],
    key: SegmentedKey,
    *,
    descending: bool,
    page: PageRequest,
    total: int,
    id_column: ColumnElement[Any],
    ids_walked: bool,
) -> list[Any]:
    """The ids of one page of `filtered` (a query narrowed by the list's filters, with no
    order) sorted by `key`, ties by id in the same direction, given its `total` rows.
    `ids_walked`: the list has no filter and the customer's ids are walked in order along an
    index that holds nothing else (SQLite's), which `_excluding_others` uses."""
    if page.limit is None:
        raise ValueError("a segmented page needs a limit")
    order = list(range(len(key.segments)))
    if descending:
        order.reverse()
    counted = {
        i: _count(conn, filtered, segment)
        for i, segment in enumerate(key.segments)
        if i != key.usual
    }
    counted[key.usual] = max(0, total - sum(counted.values()))
    counts = [counted[i] for i in order]
    others = total - counted[key.usual]
    ids: list[Any] = []
    for part in slices(counts, page.offset, page.limit):
        index = order[part.segment]
        if index == key.usual and others == 0:  # every row has the usual value
            query = filtered.with_only_columns(id_column).order_by(
                listing.directed(id_column, descending)
            )
        elif index == key.usual and ids_walked and 2 * others <= part.offset + part.limit:
            query = _excluding_others(filtered, key, id_column, descending=descending)
        else:
            query = segment_query(filtered, key.segments[index], id_column, descending=descending)
        rows = listing.run(conn, query.limit(part.limit).offset(part.offset))
        ids.extend(row[0] for row in rows)
    return ids


def _count(conn: Connection, filtered: Select[Any], segment: Segment) -> int:
    return int(listing.run(conn, count_query(filtered, segment))[0][0])


def count_query(filtered: Select[Any], segment: Segment) -> Select[Any]:
    """How many rows of `filtered` the segment holds."""
    return filtered.with_only_columns(func.count()).where(segment.condition).order_by(None)


def segment_query(
    filtered: Select[Any], segment: Segment, id_column: ColumnElement[Any], *, descending: bool
) -> Select[Any]:
    """The ids of the segment's rows of `filtered`, in the page's order."""
    terms = [id_column] if segment.key is None else [segment.key, id_column]
    return (
        filtered.with_only_columns(id_column)
        .where(segment.condition)
        .order_by(*(listing.directed(t, descending) for t in terms))
    )


def _excluding_others(
    filtered: Select[Any], key: SegmentedKey, id_column: ColumnElement[Any], *, descending: bool
) -> Select[Any]:
    """The usual segment as every row but the other segments': a walk along the id index
    alone, where testing each row for the usual value reads it (about four times the cost of
    an excluded id's, so worth it while the others are fewer than half the rows walked)."""
    ids = filtered.with_only_columns(id_column)
    others = [ids.where(s.condition) for i, s in enumerate(key.segments) if i != key.usual]
    excluded = others[0] if len(others) == 1 else union_all(*others)
    return ids.where(id_column.not_in(excluded)).order_by(listing.directed(id_column, descending))
