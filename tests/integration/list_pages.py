"""A jobs list read page after page through the store, for tests that compare every page
with a full sort."""

from __future__ import annotations

from jobyard.domain.filters import check_filter, check_sort, parse_filter, parse_sort
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services.runtime import Runtime
from jobyard.store import jobs


def request(filters: tuple[str, ...], sort: str, page: PageRequest) -> Listing:
    """A listing as the API makes it from `filter=` texts and a `sort=` text (empty: none)."""
    return Listing(
        filters=[check_filter(parse_filter(f), JOB_FIELDS) for f in filters],
        sort=check_sort(parse_sort(sort or None), JOB_FIELDS),
        page=page,
    )


def every_page(
    runtime: Runtime, filters: tuple[str, ...], sort: str, limit: int
) -> tuple[list[int], int]:
    """Customer 1's job ids, page after page until a short one, and the last total given."""
    listed: list[int] = []
    for number in range(1, 1000):
        with runtime.db.read() as conn:
            page, total = jobs.list_jobs(
                conn, request(filters, sort, PageRequest(number, limit)), tenant_id=1, pg=runtime.pg
            )
        listed += [job.id for job in page]
        if len(page) < limit:
            return listed, total
    raise AssertionError("more pages than jobs")
