"""Query-string and path parameters shared by the native routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Path, Query
from starlette.datastructures import QueryParams

from jobyard.domain import filters, paging
from jobyard.domain.filters import FieldKind
from jobyard.domain.listing import Listing
from jobyard.domain.numbers import MAX_INT64, ascii_int
from jobyard.errors import NotFound, ValidationFailed


def read_by_hand(
    name: str, description: str, *, where: str = "query", many: bool = False
) -> dict[str, Any]:
    """The API description of an optional parameter (`where`: query or header) that the
    code reads itself from the request, for an operation's `openapi_extra`: a string, or a
    list of them if `many`."""
    string = {"type": "string"}
    return {
        "name": name,
        "in": where,
        "required": False,
        "description": description,
        "schema": {"type": "array", "items": string} if many else string,
    }


def id_in_path(kind: str) -> object:
    """A path id's declaration: a digit string (anything else answers 404, so the document
    does not constrain it to digits)."""
    return Path(description=f"The {kind}'s id: ASCII digits", examples=["1"])


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


def flag_value(text: str | None, name: str, default: bool = False) -> bool:
    return filters.parse_bool(text, name=name, default=default)


def listing(query: QueryParams, kinds: Mapping[str, FieldKind]) -> Listing:
    """Filters, `type`, `sort`, `page` and `limit`, each checked against the resource's fields."""
    return _listing(
        kinds,
        query.getlist("filter"),
        query.get("type"),
        query.get("sort"),
        query.get("page"),
        query.get("limit"),
        query.get("detailed"),
    )


def _listing(
    kinds: Mapping[str, FieldKind],
    filter_texts: list[str],
    combine: str | None,
    sort: str | None,
    page: str | None,
    limit: str | None,
    detailed: str | None,
) -> Listing:
    checked = [filters.check_filter(f, kinds) for f in filters.parse_filters(filter_texts)]
    sort_keys = filters.check_sort(filters.parse_sort(sort), kinds)
    # `detailed` is accepted for CDRouter; every representation is the full one.
    filters.parse_bool(detailed, name="detailed", default=False)
    return Listing(
        filters=checked,
        combine=filters.parse_combine(combine),
        sort=sort_keys,
        page=paging.parse_page_request(page, limit),
    )


FILTER_HELP = (
    "`<field><op><value>`, repeatable; ops `= != < <= > >= ~ !~ ~* !~* @> <@ &&` "
    "(`~` a regular expression, `*` without case; arrays as `{a,b}`). Fields: "
)
Filters = Annotated[list[str] | None, Query(alias="filter", description=FILTER_HELP)]
Combine = Annotated[
    str | None,
    Query(alias="type", description="How filters combine: `inter` (all, the default) or `union`"),
]
Sort = Annotated[
    str | None,
    Query(description="Fields to sort by, comma-separated; `-` before one sorts descending"),
]
PageNumber = Annotated[str | None, Query(description="The page, from 1 (ASCII digits)")]
Limit = Annotated[
    str | None, Query(description="Rows per page: 1 to 1000 (default 25), or `none` for all")
]
Detailed = Annotated[
    str | None, Query(description="Accepted for CDRouter; answers are always detailed")
]


def listing_of(kinds: Mapping[str, FieldKind]) -> Callable[..., Awaitable[Listing]]:
    """A dependency that reads a list's query parameters (documented, with the resource's
    fields) into a checked `Listing`."""

    async def read(
        filter_texts: Filters = None,
        combine: Combine = None,
        sort: Sort = None,
        page: PageNumber = None,
        limit: Limit = None,
        detailed: Detailed = None,
    ) -> Listing:
        return _listing(kinds, filter_texts or [], combine, sort, page, limit, detailed)

    fields = ", ".join(f"`{name}`" for name in kinds)
    read.__annotations__["filter_texts"] = Annotated[
        list[str] | None, Query(alias="filter", description=FILTER_HELP + fields)
    ]
    return read


def selection(
    texts: list[str], combine: str | None, kinds: Mapping[str, FieldKind]
) -> Listing | None:
    """What a bulk operation selects by filter: None when no filter was given."""
    if not texts:
        return None
    checked = [filters.check_filter(f, kinds) for f in filters.parse_filters(texts)]
    return Listing(
        filters=checked,
        combine=filters.parse_combine(combine),
        page=paging.PageRequest(page=1, limit=None),
    )
