"""A page nearer the end of a list than its start is read from the end, in the reverse order,
and put back in the list's: every page, for sorts with NULLs, ties and several keys, with and
without a filter, on both databases, holds what reading the whole list at once gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobyard.domain.filters import check_filter, check_sort, parse_filter, parse_sort
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import jobs, tables
from tests.integration.job_rows import job_row

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stored(runtime: Runtime) -> None:
    """43 jobs with repeated values, NULL times and ids, and ties of creation."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    rng = random.Random(11)
    with runtime.db.transaction() as conn:
        for _ in range(43):
            at = START + timedelta(minutes=rng.randint(0, 9))
            status = rng.choice(["completed", "completed", "failed", "pending", "running"])
            row = job_row(tenant_id=1, user_id=user_id, status=status, at=at)
            row["package_name"] = rng.choice(["a", "b", "c"])
            if status in {"completed", "failed"}:
                row["started"] = at + timedelta(seconds=rng.randint(0, 3))
                row["finished"] = row["started"] + timedelta(seconds=rng.randint(0, 3))
                row["exit_code"] = 0 if status == "completed" else rng.choice([1, 2])
            conn.execute(sa.insert(tables.jobs).values(**row))


def _list(runtime: Runtime, filters: tuple[str, ...], sort: str, page: PageRequest) -> list[int]:
    request = Listing(
        filters=[check_filter(parse_filter(f), JOB_FIELDS) for f in filters],
        sort=check_sort(parse_sort(sort), JOB_FIELDS) if sort else (),
        page=page,
    )
    with runtime.db.read() as conn:
        found, _ = jobs.list_jobs(conn, request, tenant_id=1, pg=runtime.pg)
    return [job.id for job in found]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("limit", [4, 7])
@pytest.mark.parametrize(
    "filters",
    [(), ("status=completed",), ("package_name=a",), ("finished>=2026-01-01T00:03:00Z",)],
    ids=["all", "completed", "package", "ended"],
)
@pytest.mark.parametrize(
    "sort",
    [
        "",
        "-id",
        "finished",
        "-finished",
        "status,-finished",
        "-package_name,created",
        "exit_code",
        "-started",
        "package_id",
        "-device_id",
    ],
)
def test_every_page_holds_what_the_whole_list_gives(
    runtime: Runtime, filters: tuple[str, ...], sort: str, limit: int
) -> None:
    whole = _list(runtime, filters, sort, PageRequest(1, None))
    paged: list[int] = []
    for number in range(1, len(whole) // limit + 3):
        paged += _list(runtime, filters, sort, PageRequest(number, limit))
    assert paged == whole
