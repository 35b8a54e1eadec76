"""Filters, sorts and pages compiled to SQL for any listed resource, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.sql import expression

from jobyard.domain import regex
from jobyard.domain.filters import Combine, FieldKind, Filter, Op, typed_value
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest, nearer_slice
from jobyard.errors import QueryTooSlow, ValidationFailed
from jobyard.store.db import ran_out_of_time, time_limited

# A filter's condition written so that an index answers it, for a field whose own expression
# hides the indexed column (a coalesce, a JSON array); None where it has no such form.
IndexedCondition = Callable[[Op, Any], Any]


@dataclass(frozen=True)
class Field:
    """A listable field: its kind (for parsing values) and the SQL expression behind it."""

    kind: FieldKind
    column: ColumnElement[Any]
    indexed: IndexedCondition | None = None
    # What a sort orders by instead of `column`, NULLs first as an index holds them: an id
    # that may be NULL, shown as 0, sorts as NULL does (below any id).
    nulls_first_sort: ColumnElement[Any] | None = None
    # An equality on it picks out few rows (a package, a device): said so to SQLite's planner.
    selective: bool = False


def fields(
    kinds: Mapping[str, FieldKind],
    columns: Mapping[str, ColumnElement[Any]],
    indexed: Mapping[str, IndexedCondition] | None = None,
    nulls_first_sorts: Mapping[str, ColumnElement[Any]] | None = None,
    selective: Sequence[str] = (),
) -> dict[str, Field]:
    """A listed resource's fields: the domain's names and kinds, each with its column (and,
    for some, a condition an index answers). The store maps every name the domain lists, and
    no other."""
    if set(kinds) != set(columns):
        unmapped, unknown = sorted(set(kinds) - set(columns)), sorted(set(columns) - set(kinds))
        raise LookupError(
            f"fields without a column: {unmapped}; columns without a field: {unknown}"
        )
    rewrites, sorts = indexed or {}, nulls_first_sorts or {}
    return {
        name: Field(
            kinds[name], columns[name], rewrites.get(name), sorts.get(name), name in selective
        )
        for name in kinds
    }


def _pg_array_condition(column: ColumnElement[Any], op: Op, values: tuple[str, ...]) -> Any:
    as_jsonb = expression.cast(column, JSONB)
    if op is Op.CONTAINS:
        return as_jsonb.contains(list(values))
    if op is Op.CONTAINED_BY:
        return as_jsonb.contained_by(list(values))
    return as_jsonb.has_any(array(list(values))) if values else false()


def _sqlite_array_condition(column: ColumnElement[Any], op: Op, values: tuple[str, ...]) -> Any:
    element = func.json_each(column).table_valued("value")
    if op is Op.CONTAINS:
        matching = select(func.count(element.c.value.distinct())).where(element.c.value.in_(values))
        return matching.scalar_subquery() == len(set(values)) if values else true()
    if op is Op.CONTAINED_BY:
        return not_(exists(select(literal(1)).where(element.c.value.not_in(values))))
    return exists(select(literal(1)).where(element.c.value.in_(values)))


def _array_condition(column: ColumnElement[Any], op: Op, values: tuple[str, ...], pg: bool) -> Any:
    if op in {Op.EQ, Op.NE}:
        equal = and_(
            _array_condition(column, Op.CONTAINS, values, pg),
            _array_condition(column, Op.CONTAINED_BY, values, pg),
        )
        return equal if op is Op.EQ else not_(equal)
    if pg:
        return _pg_array_condition(column, op, values)
    return _sqlite_array_condition(column, op, values)


def _regex(column: ColumnElement[Any], op: Op, pattern: str) -> Any:
    # An inline flag works in both RE2 (SQLite's REGEXP, see store/db.py) and PostgreSQL;
    # SQLAlchemy's `flags` argument is silently dropped on SQLite.
    if op in {Op.IMATCH, Op.NOT_IMATCH}:
        pattern = regex.IGNORE_CASE + pattern
    matched = column.regexp_match(pattern)
    return not_(matched) if op in {Op.NOT_MATCH, Op.NOT_IMATCH} else matched


COMPARISONS = {
    Op.EQ: lambda c, v: c == v,
    Op.NE: lambda c, v: c != v,
    Op.LT: lambda c, v: c < v,
    Op.LE: lambda c, v: c <= v,
    Op.GT: lambda c, v: c > v,
    Op.GE: lambda c, v: c >= v,
}


def condition(f: Filter, field: Field, *, pg: bool) -> Any:
    """One checked filter as a SQL condition."""
    found = _condition(f, field, pg=pg)
    if field.selective and f.op is Op.EQ and not pg:
        return _likely(found, SELECTIVE_LIKELIHOOD)
    return found


# SQLite plans without statistics of the rows (it gathers them only when told, and jobyard
# does not), so it cannot tell that a package or a device picks out a few of a customer's
# jobs and a status most of them: given both, it walked every completed job testing its
# package (180 ms over 1,000,000 jobs, against 28 along the package's index). A likelihood
# (SQLite's own hint, which the query leaves unchanged) says so.
SELECTIVE_LIKELIHOOD = "0.05"


def _likely(found: ColumnElement[bool], probability: str) -> Any:
    # SQLite takes the probability as a literal only, never a bound parameter; untyped, so
    # that the condition is not compared with 1 (which no index answers).
    return func.likelihood(found, literal_column(probability))


def _condition(f: Filter, field: Field, *, pg: bool) -> Any:
    value = typed_value(f, field.kind)
    if field.indexed is not None and (rewritten := field.indexed(f.op, value)) is not None:
        return rewritten
    if field.kind is FieldKind.INTEGER and isinstance(value, tuple):  # one of a set
        return field.column.in_(value)
    if isinstance(value, tuple):  # array fields, after check_filter
        return _array_condition(field.column, f.op, tuple(map(str, value)), pg)
    if f.op in {Op.MATCH, Op.NOT_MATCH, Op.IMATCH, Op.NOT_IMATCH}:
        return _regex(field.column, f.op, str(value))
    return COMPARISONS[f.op](field.column, value)


def apply(
    query: Select[Any],
    listing: Listing,
    fields: Mapping[str, Field],
    *,
    pg: bool,
    tiebreak: ColumnElement[Any],
) -> Select[Any]:
    """The query narrowed by the filters and ordered by the sort (ties broken by id)."""
    conditions = [condition(f, fields[f.field], pg=pg) for f in listing.filters]
    if conditions:
        query = query.where(
            and_(*conditions) if listing.combine is Combine.INTER else or_(*conditions)
        )
    return query.order_by(*ordering(listing, fields, tiebreak, pg=pg))


def ordering(
    listing: Listing,
    fields: Mapping[str, Field],
    tiebreak: ColumnElement[Any],
    *,
    pg: bool,
    backwards: bool = False,
) -> list[ColumnElement[Any]]:
    """The sort as ORDER BY terms, ties broken by `tiebreak` (a unique column) in the
    direction of the last sort key: an index (…, key, id) then gives the order read either
    way, where a tie-break against the key's direction makes the database sort every row.
    `backwards`: the exact reverse of that order (NULLs at the other end too)."""
    order = []
    for key in listing.sort:
        field = fields[key.field]
        order.append(_ordered(field, key.descending != backwards, pg=pg))
    if listing.sort and fields[listing.sort[-1].field].column.compare(tiebreak):
        return order  # sorted by the tie-break itself: nothing left to break
    descending = (bool(listing.sort) and listing.sort[-1].descending) != backwards
    return [*order, tiebreak.desc() if descending else tiebreak.asc()]


def directed(column: ColumnElement[Any], descending: bool) -> ColumnElement[Any]:
    """An ORDER BY term of `column` in the sort's direction."""
    return column.desc() if descending else column.asc()


def _ordered(field: Field, descending: bool, *, pg: bool) -> ColumnElement[Any]:
    column = field.nulls_first_sort
    if column is None:
        return directed(field.column, descending)
    if not pg:  # SQLite's NULLs are below every value, both ways
        return directed(column, descending)
    return column.desc().nulls_last() if descending else column.asc().nulls_first()


def run(conn: Connection, query: Select[Any] | CompoundSelect[Any]) -> list[Any]:
    """Execute a filtered query within the database's time limit (QueryTooSlow past it); a
    filter the database itself refuses is the client's error.

    RE2 checks regular expressions first, but PostgreSQL's dialect is not the same (named
    groups, for one), so the database can still refuse a pattern.
    """
    try:
        with time_limited(conn), conn.begin_nested():
            return list(conn.execute(query))
    except DataError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "refused"
        raise ValidationFailed(f"invalid filter: {reason}") from None
    except OperationalError as exc:
        if ran_out_of_time(exc):
            raise QueryTooSlow(TOO_SLOW) from None
        raise


TOO_SLOW = "the list took longer than the server allows: narrow the filters or try again later"


@dataclass(frozen=True)
class Keyed:
    """How to read a page's rows by their key: a unique column, and the listing's ORDER BY.
    `first_page`: the first page too, for SQLite, whose sorter carries whole rows: where a
    page is sorted from many rows (a week of jobs sorted by id: 40,000), sorting the keys
    and then reading the page's rows takes a third of the time. PostgreSQL gains nothing.
    `backwards`: the reverse ORDER BY, with which a page nearer the end of the list than its
    start is read from the end (`paging.nearer_slice`)."""

    key: ColumnElement[Any]
    order: Sequence[ColumnElement[Any]]
    first_page: bool = False
    backwards: Sequence[ColumnElement[Any]] = ()


def fetch_page(
    conn: Connection,
    query: Select[Any],
    page: PageRequest,
    *,
    total: int | None = None,
    keyed: Keyed | None = None,
) -> tuple[list[Any], int]:
    """The rows of one page and the total over all pages (counted unless the caller knows it).

    With `keyed`, a page past the first (and the first if `keyed.first_page`) skips its
    offset and sorts over the key alone, which an index holding the filtered and sorted
    columns and the key answers without reading the rows it skips; only that page's rows are
    then read whole, by key.
    """
    if total is None:
        total = count(conn, query)
    if page.limit is not None and page.offset >= total:
        return [], total  # past the end: walking the whole list would find no row
    return run(conn, page_query(query, page, keyed, total=total)), total


def count(conn: Connection, query: Select[Any]) -> int:
    """How many rows the query gives, within the database's time limit."""
    counted = run(conn, select(func.count()).select_from(query.order_by(None).subquery()))
    return int(counted[0][0])


def page_query(
    query: Select[Any],
    page: PageRequest,
    keyed: Keyed | None = None,
    *,
    total: int | None = None,
) -> Select[Any]:
    """The query of one page's rows (see `fetch_page`); given the `total`, a page nearer the
    end of the list is read from the end, its rows then put back in the list's order."""
    if page.limit is None:
        return query
    nearer = None if total is None else nearer_slice(page, total)
    if keyed is not None and keyed.backwards and nearer is not None and nearer.backwards:
        backwards = query.order_by(None).order_by(*keyed.backwards)
        return _rows_by_key(backwards.limit(nearer.limit).offset(nearer.offset), keyed)
    query = query.limit(page.limit).offset(page.offset)
    if keyed is not None and (page.offset > 0 or keyed.first_page):
        return _rows_by_key(query, keyed)
    return query


def _rows_by_key(page: Select[Any], keyed: Keyed) -> Select[Any]:
    # The outer query repeats no filter: SQLite would otherwise walk the filter's index to
    # keep the order and test every entry against the page's keys.
    keys = page.with_only_columns(keyed.key).correlate(None).scalar_subquery()
    return select(*page.selected_columns).where(keyed.key.in_(keys)).order_by(*keyed.order)
