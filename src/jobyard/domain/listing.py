"""What a caller asks of a list: filters, how they combine, the order and the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobyard.domain.filters import Combine, Filter, SortKey
from jobyard.domain.paging import DEFAULT_LIMIT, PageRequest

DEFAULT_PAGE = PageRequest(page=1, limit=DEFAULT_LIMIT)


@dataclass(frozen=True)
class Listing:
    """A list request, parsed and checked against the listed resource's fields."""

    filters: Sequence[Filter] = ()
    combine: Combine = Combine.INTER
    sort: Sequence[SortKey] = ()
    page: PageRequest = DEFAULT_PAGE
