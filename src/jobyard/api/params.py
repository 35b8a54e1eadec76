"""Query-string and path parameters shared by the native routes."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import QueryParams

from jobyard.domain import filters, paging
from jobyard.domain.filters import FieldKind
from jobyard.errors import NotFound, ValidationFailed
from jobyard.store.listing import Listing

MAX_ID = 2**63 - 1


def object_id(text: str, not_found: str) -> int:
    """A path id: digits only; anything else names no object (404, like an unknown id)."""
    if not text.isdigit() or int(text) > MAX_ID or int(text) == 0:
        raise NotFound(not_found)
    return int(text)


def reference_id(value: object, name: str) -> int | None:
    """A body reference (`"12"` or 12); `"0"`, 0, "" and null mean none."""
    if value is None or value == "":
        return None
    text = str(value)
    if isinstance(value, bool) or not text.isdigit() or int(text) > MAX_ID:
        raise ValidationFailed(f"invalid {name} {value!r}: expected a digit string", field=name)
    return int(text) or None


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
