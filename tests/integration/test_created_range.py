"""A page of the jobs created within a range, in id order, read along the index of creation
and checked against the rest of the range (store/created_range.py). Every page, both ways,
on both databases, is what sorting every job would give: with creation in id order, with
jobs created out of it (which the check must catch), with ties; and the lists it does not
apply to are told apart."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.paging import PageRequest
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import created_range, jobs, tables
from tests.integration import list_pages
from tests.integration.job_rows import job_row

J = tables.jobs
START = datetime(2026, 3, 1, tzinfo=UTC)
LIMIT = 4
MONTH = ("created>=2026-03-02", "created<2026-03-05")


def _store(runtime: Runtime, stamps: list[datetime], tenant_id: int = 1) -> list[dict[str, Any]]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    rows = []
    with runtime.db.transaction() as conn:
        if tenant_id != 1:
            conn.execute(
                sa.insert(tables.tenants).values(id=tenant_id, name="other", created=START)
            )
        for created in stamps:
            row = job_row(tenant_id=tenant_id, user_id=user_id, status="pending", at=created)
            job_id = conn.execute(sa.insert(J).values(**row).returning(J.c.id)).scalar_one()
            rows.append(row | {"id": job_id})
    return rows


def _in_order(count: int) -> list[datetime]:
    """Creation in id order, two jobs now and then in the same microsecond."""
    return [START + timedelta(hours=(i - i % 3 // 2) * 2) for i in range(count)]


def _shuffled(count: int, seed: int) -> list[datetime]:
    """Creation in id order but for some jobs stamped hours earlier or later."""
    rng = random.Random(seed)
    stamps = _in_order(count)
    for i in rng.sample(range(count), count // 6):
        stamps[i] += timedelta(hours=rng.choice([-30, -7, 5, 40]))
    return stamps


def _expected(rows: list[dict[str, Any]], low: datetime, high: datetime, sort: str) -> list[int]:
    kept = [r["id"] for r in rows if low <= r["created"] < high and r["tenant_id"] == 1]
    return sorted(kept, reverse=sort == "-id")


@pytest.mark.parametrize("sort", ["-id", "id", ""])
@pytest.mark.parametrize("stamps", ["in order", "shuffled 1", "shuffled 2"])
def test_every_page_is_in_the_order_of_a_full_sort(
    runtime: Runtime, sort: str, stamps: str
) -> None:
    made = _in_order(80) if stamps == "in order" else _shuffled(80, int(stamps[-1]))
    rows = _store(runtime, made)
    rows += _store(runtime, _in_order(10), tenant_id=2)  # another customer's, never listed
    low, high = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)
    expected = _expected(rows, low, high, sort)
    assert len(expected) > 3 * LIMIT, "the range spans pages"
    assert list_pages.every_page(runtime, MONTH, sort, LIMIT) == (expected, len(expected))


def test_a_job_created_out_of_order_beyond_the_page_is_found(runtime: Runtime) -> None:
    """The newest ids of the range, save one created hours before the others: walking the
    newest creations first reaches it last, yet it belongs on the first page by id."""
    stamps = _in_order(40)
    stamps[-1] = START + timedelta(days=1, hours=1)
    rows = _store(runtime, stamps)
    high = datetime(2026, 3, 5, tzinfo=UTC)
    expected = _expected(rows, datetime(2026, 3, 2, tzinfo=UTC), high, "-id")
    assert expected[0] == rows[-1]["id"]
    assert list_pages.every_page(runtime, MONTH, "-id", LIMIT) == (expected, len(expected))


def test_a_range_smaller_than_the_page_reaches(runtime: Runtime) -> None:
    rows = _store(runtime, _shuffled(30, 3))
    expected = _expected(rows, START + timedelta(hours=10), START + timedelta(hours=20), "id")
    filters = ("created>=2026-03-01T10:00:00Z", "created<2026-03-01T20:00:00Z")
    with runtime.db.read() as conn:
        deep = list_pages.request(filters, "id", PageRequest(3, LIMIT))
        page, total = jobs.list_jobs(conn, deep, tenant_id=1, pg=runtime.pg)
        past = list_pages.request(filters, "id", PageRequest(99, LIMIT))
        beyond, still = jobs.list_jobs(conn, past, tenant_id=1, pg=runtime.pg)
    assert total == still == len(expected)
    assert [job.id for job in page] == expected[2 * LIMIT :][:LIMIT]
    assert beyond == []


PAGE = PageRequest(1, 25)


@pytest.mark.parametrize(
    ("filters", "sort", "page", "applies"),
    [
        (MONTH, "-id", PAGE, True),
        (MONTH, "id", PAGE, True),
        (MONTH, "", PAGE, True),
        (("created>2026-03-02",), "-id", PAGE, True),
        (MONTH, "-created", PAGE, False),  # the index of creation gives that order itself
        (MONTH, "id,-created", PAGE, False),
        ((*MONTH, "status=completed"), "-id", PAGE, False),
        (("created=2026-03-02",), "-id", PAGE, False),
        ((), "-id", PAGE, False),
        (MONTH, "-id", PageRequest(1, None), False),
    ],
)
def test_which_lists_are_read_along_the_index_of_creation(
    filters: tuple[str, ...], sort: str, page: PageRequest, applies: bool
) -> None:
    assert created_range.applies(list_pages.request(filters, sort, page)) is applies
