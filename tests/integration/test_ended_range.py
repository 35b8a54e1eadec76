"""A page of the jobs that ended within a range, sorted by another key: PostgreSQL reads the
range from the index of ends and sorts it (store/ended_range.py). Every page, both ways,
with a status too, on both databases, is what sorting every job would give; and the lists
it does not apply to are told apart."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.paging import PageRequest
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import ended_range, tables
from tests.integration import list_pages
from tests.integration.job_rows import job_row

J = tables.jobs
START = datetime(2026, 3, 1, tzinfo=UTC)
LIMIT = 4
WEEK = ("finished>=2026-03-02", "finished<2026-03-05")


@pytest.fixture
def stored(runtime: Runtime) -> list[dict[str, Any]]:
    """36 jobs of customer 1, most ended at times that tie now and then, some not ended;
    created out of id order, so that no sort follows another."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    rng = random.Random(5)
    rows = []
    with runtime.db.transaction() as conn:
        for i in range(36):
            created = START + timedelta(hours=rng.randint(0, 90))
            row = job_row(tenant_id=1, user_id=user_id, status="completed", at=created)
            if i % 5 == 4:
                row |= {"status": "running", "finished": None}
            else:
                row["status"] = rng.choice(["completed", "completed", "failed"])
                row["finished"] = created + timedelta(hours=rng.choice([1, 2, 30]))
                row["updated"] = row["finished"]
            job_id = conn.execute(sa.insert(J).values(**row).returning(J.c.id)).scalar_one()
            rows.append(row | {"id": job_id})
    return rows


def _in_week(row: dict[str, Any]) -> bool:
    ended = row["finished"]
    return ended is not None and datetime(2026, 3, 2, tzinfo=UTC) <= ended < datetime(
        2026, 3, 5, tzinfo=UTC
    )


@pytest.mark.parametrize("sort", ["created", "-created", "id", "-id", "-updated", "status"])
@pytest.mark.parametrize("status", [None, "completed"], ids=["any-status", "completed"])
def test_every_page_is_in_the_order_of_a_full_sort(
    runtime: Runtime, stored: list[dict[str, Any]], sort: str, status: str | None
) -> None:
    filters = WEEK if status is None else (*WEEK, f"status={status}")
    kept = [r for r in stored if _in_week(r) and (status is None or r["status"] == status)]
    key = sort.lstrip("-")
    expected = sorted(kept, key=lambda r: (r[key], r["id"]), reverse=sort.startswith("-"))
    assert kept, "the week holds some jobs"
    assert list_pages.every_page(runtime, filters, sort, LIMIT) == (
        [r["id"] for r in expected],
        len(kept),
    )


def test_past_the_bound_the_list_is_the_same(
    runtime: Runtime, stored: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fewer jobs allowed in the range than it holds, the planner's own walk gives the
    same pages."""
    read_from_the_range = list_pages.every_page(runtime, WEEK, "-created", LIMIT)
    monkeypatch.setattr(ended_range, "MOST_ROWS", 1)
    assert list_pages.every_page(runtime, WEEK, "-created", LIMIT) == read_from_the_range


PAGE = PageRequest(1, 25)


@pytest.mark.parametrize(
    ("filters", "sort", "total", "applies"),
    [
        (WEEK, "-created", 100, True),
        ((*WEEK, "status=completed"), "-id", 100, True),
        (("finished>2026-03-02",), "updated", 100, True),
        (WEEK, "-created", ended_range.MOST_ROWS + 1, False),
        (WEEK, "finished", 100, False),  # the index of ends gives that order itself
        (WEEK, "package_name", 100, False),  # not held by the index of ends
        ((*WEEK, "package_name=p"), "-created", 100, False),
        (("created>=2026-03-02",), "-id", 100, False),  # no range of ends
        (("finished=2026-03-02",), "-id", 100, False),
    ],
)
def test_which_lists_are_read_from_the_range(
    filters: tuple[str, ...], sort: str, total: int, applies: bool
) -> None:
    assert ended_range.applies(list_pages.request(filters, sort, PAGE), total) is applies
