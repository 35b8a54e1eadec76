"""Query-string and path parameters shared by the native routes."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import QueryParams

from jobyard.domain import filters, paging
from jobyard.domain.filters import FieldKind
from jobyard.domain.listing import Listing
from jobyard.domain.numbers import MAX_INT64, ascii_int
from jobyard.errors import NotFound, ValidationFailed


def object_id(text: str, not_found: str) -> int:
    """A path id: ASCII digits from 1 to 2**63-1; anything else names no object (404, like
    an unknown id)."""
    found = ascii_int(text, low=1)
    if found is None:
        raise NotFound(not_found)
    return found


def reference_id(value: object, name: str) -> int | None:
    """A body reference (`"12"` or 12); `"0"`, 0, "" and null mean none."""
    if value is None or value == "":
        return None
    found = None if isinstance(value, bool) else ascii_int(str(value))
    if found is None:
        raise ValidationFailed(f"invalid {name} {value!r}: expected a digit string", field=name)
    return found or None


def integer(
    text: str | None, name: str, *, default: int | None, high: int = MAX_INT64
) -> int | None:
    """A non-negative integer parameter (query string or header); absent or empty gives
    `default`, anything but ASCII digits up to `high` is a 400 naming it."""
    if text is None or text == "":
        return default
    found = ascii_int(text, high=high)
    if found is None:
        raise ValidationFailed(
            f"invalid {name} {text[:40]!r}: expected an integer from 0 to {high}", field=name
        )
    return found


def flag(query: QueryParams, name: str, default: bool = False) -> bool:
    return filters.parse_bool(query.get(name), name=name, default=default)


def listing(query: QueryParams, kinds: Mapping[str, FieldKind]) -> Listing:
    """Filters, `type`, `sort`, `page` and `limit`, each checked against the resource's fields."""
    checked = [
        filters.check_filter(f, kinds) for f in filters.parse_filters(query.getlist("filter"))
    ]
    sort = filters.check_sort(filters.parse_sort(query.get("sort")), kinds)
    flag(query, "detailed")  # accepted for CDRouter; every representation is the full one
    return Listing(
        filters=checked,
        combine=filters.parse_combine(query.get("type")),
        sort=sort,
        page=paging.parse_page_request(query.get("page"), query.get("limit")),
    )


def selection(query: QueryParams, kinds: Mapping[str, FieldKind]) -> Listing | None:
    """What a bulk operation selects by filter: None when no filter was given."""
    texts = query.getlist("filter")
    if not texts:
        return None
    checked = [filters.check_filter(f, kinds) for f in filters.parse_filters(texts)]
    return Listing(
        filters=checked,
        combine=filters.parse_combine(query.get("type")),
        page=paging.PageRequest(page=1, limit=None),
    )
