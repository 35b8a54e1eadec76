"""CDRouter paging: the `page` and `limit` parameters and the `links` object of list answers."""

from __future__ import annotations

from dataclasses import dataclass

from jobyard.domain.numbers import ascii_int
from jobyard.errors import ValidationFailed

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000  # the documented largest page; `limit=none` asks for everything at once
MAX_PAGE = 2**31 - 1  # keeps the offset far inside a 64-bit integer


@dataclass(frozen=True)
class PageRequest:
    """A 1-based page of `limit` rows; a limit of None puts every row on page 1."""

    page: int
    limit: int | None

    @property
    def offset(self) -> int:
        """Rows to skip; with no limit nothing is skipped, whatever page was asked for."""
        return 0 if self.limit is None else (self.page - 1) * self.limit


@dataclass(frozen=True)
class Slice:
    """Rows to skip and rows to take, in the list's order or in the reverse of it."""

    offset: int
    limit: int
    backwards: bool


def nearer_slice(request: PageRequest, total: int) -> Slice | None:
    """The page's rows read from whichever end of the list is nearer (None: no limit): a
    database skips the rows before an offset one by one, so the last pages of a list of
    `total` rows read backwards skip few. Read backwards, the rows come in reverse order."""
    if request.limit is None:
        return None
    rows = max(0, min(request.limit, total - request.offset))
    from_the_end = total - request.offset - rows
    if rows and from_the_end < request.offset:
        return Slice(from_the_end, rows, backwards=True)
    return Slice(request.offset, request.limit, backwards=False)


def _bounded_int(text: str, low: int, high: int) -> int | None:
    return ascii_int(text.strip(), low=low, high=high)


def parse_page_request(page: str | None, limit: str | None) -> PageRequest:
    """Parse `page` (default 1) and `limit` (default 25, `none` for no limit)."""
    number = 1 if not page else _bounded_int(page, 1, MAX_PAGE)
    if number is None:
        raise ValidationFailed(f'invalid page "{page}": expected a positive integer', field="page")
    if not limit:
        return PageRequest(number, DEFAULT_LIMIT)
    if limit.strip().lower() == "none":
        return PageRequest(number, None)
    size = _bounded_int(limit, 1, MAX_LIMIT)
    if size is None:
        raise ValidationFailed(
            f'invalid limit "{limit}": expected an integer from 1 to {MAX_LIMIT} or none',
            field="limit",
        )
    return PageRequest(number, size)


def _current_page(total: int, request: PageRequest) -> int:
    if total == 0:
        return 0  # no rows: there is no page to be on
    return 1 if request.limit is None else request.page


def page_links(*, total: int, request: PageRequest) -> dict[str, int | None]:
    """The `links` of a list answer for `total` matching rows.

    With no limit everything is one page, so `limit` reports the page size that covers it,
    `max(total, 1)`: always a positive integer, as the CDRouter client's schema requires.
    With no rows, `current` and `last` are 0 and there is neither `next` nor `prev`.
    """
    limit = max(total, 1) if request.limit is None else request.limit
    last = -(-total // limit)  # ceiling division: 0 pages for 0 rows
    current = _current_page(total, request)
    return {
        "first": 1,
        "last": last,
        "current": current,
        "total": total,
        "limit": limit,
        "next": current + 1 if 0 < current < last else None,
        "prev": current - 1 if current > 1 else None,
    }
