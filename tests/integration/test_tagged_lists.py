"""Lists filtered by tags alone read the tags' rows (`job_tags`, `job_tag_pairs`), in id or
creation order: every page of one, two or three tags, both ways, on both databases, holds
what sorting the matching jobs would give, with the matching total; the rows follow the
jobs' tags, customer and creation through inserts, edits and deletes."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.filters import Combine, check_filter, check_sort, parse_filter, parse_sort
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services import accounts
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings
from jobyard.store import jobs, migrate, tables
from jobyard.store.db import normalise_url
from tests.conftest import POSTGRES_URL
from tests.integration.job_rows import job_row

J = tables.jobs
LIMIT = 4
# Code point order differs from a locale's here ("Zeta" < "alpha" < "ärger"), and that is the
# order pairs are written in on both databases.
VOCABULARY = ("nightly", "lab", "Zeta", "alpha", "ärger")
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stored(runtime: Runtime) -> list[dict[str, Any]]:
    """60 jobs of customer 1 and 15 of customer 2 (never listed) with 0 to 4 tags (repeats
    among them), created in an order unlike their ids', with ties; each row with its id."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    rng = random.Random(5)
    rows = []
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(tables.tenants).values(id=2, name="other", created=START))
        for i in range(75):
            at = START + timedelta(minutes=rng.randint(0, 30))
            status = "completed" if i % 3 else "failed"
            row = job_row(tenant_id=1 if i < 60 else 2, user_id=user_id, status=status, at=at)
            tags = rng.sample(VOCABULARY, rng.choice([0, 1, 2, 2, 3, 4]))
            row["tags"] = tags + tags[:1] if i % 9 == 0 else tags
            job_id = conn.execute(sa.insert(J).values(**row).returning(J.c.id)).scalar_one()
            rows.append(row | {"id": job_id})
    return rows


def _listing(filters: tuple[str, ...], sort: str, page: int) -> Listing:
    return Listing(
        filters=[check_filter(parse_filter(f), JOB_FIELDS) for f in filters],
        sort=check_sort(parse_sort(sort), JOB_FIELDS) if sort else (),
        page=PageRequest(page, LIMIT),
    )


def _pages(runtime: Runtime, filters: tuple[str, ...], sort: str) -> tuple[list[int], int]:
    listed: list[int] = []
    totals = set()
    for number in range(1, 40):
        with runtime.db.read() as conn:
            page, total = jobs.list_jobs(
                conn, _listing(filters, sort, number), tenant_id=1, pg=runtime.pg
            )
        listed += [job.id for job in page]
        totals.add(total)
        if len(page) < LIMIT:
            [total] = totals
            return listed, total
    raise AssertionError("more pages than jobs")


def _expected(rows: list[dict[str, Any]], tags: set[str], sort: str) -> list[int]:
    mine = [row for row in rows if row["tenant_id"] == 1 and tags <= set(row["tags"])]
    descending = sort.startswith("-")
    if sort.lstrip("-") == "created":
        mine.sort(key=lambda row: (row["created"], row["id"]), reverse=descending)
    else:
        mine.sort(key=lambda row: row["id"], reverse=descending)
    return [row["id"] for row in mine]


TAG_SETS = [
    ("nightly",),
    ("ärger",),
    ("lab", "nightly"),
    ("alpha", "Zeta"),
    ("lab", "Zeta", "alpha"),
]


@pytest.mark.parametrize("sort", ["", "id", "-id", "created", "-created", "id,-id"])
@pytest.mark.parametrize("tags", TAG_SETS, ids=",".join)
def test_every_page_of_some_tags_is_in_the_order_of_a_full_sort(
    runtime: Runtime, stored: list[dict[str, Any]], tags: tuple[str, ...], sort: str
) -> None:
    listed, total = _pages(runtime, (f"tags@>{{{','.join(tags)}}}",), sort)
    expected = _expected(stored, set(tags), sort.split(",", maxsplit=1)[0])
    assert expected, "the seed gives every tag set some jobs"
    assert listed == expected
    assert total == len(expected)


@pytest.mark.parametrize("sort", ["-created", "created", "id", "-id"])
@pytest.mark.parametrize("tags", TAG_SETS, ids=",".join)
def test_tags_with_another_filter_page_in_order_too(
    runtime: Runtime, stored: list[dict[str, Any]], tags: tuple[str, ...], sort: str
) -> None:
    """Combined with another filter, the tags' rows are walked in order and each one's job
    tested: the pages and the total are those of the jobs that meet both."""
    completed = [row for row in stored if row["status"] == "completed"]
    filters = ("status=completed", f"tags@>{{{','.join(tags)}}}")
    listed, total = _pages(runtime, filters, sort)
    assert listed == _expected(completed, set(tags), sort)
    assert total == len(listed)


def test_tags_or_another_filter_find_the_jobs_that_meet_either(
    runtime: Runtime, stored: list[dict[str, Any]]
) -> None:
    request = _listing(("tags@>{lab,nightly}", "status=failed"), "-created", 1)
    request = replace(request, combine=Combine.UNION, page=PageRequest(1, 100))
    with runtime.db.read() as conn:
        page, total = jobs.list_jobs(conn, request, tenant_id=1, pg=runtime.pg)
    either = [
        row for row in stored if row["status"] == "failed" or {"lab", "nightly"} <= set(row["tags"])
    ]
    assert [job.id for job in page] == _expected(either, set(), "-created")
    assert total == len(page)


def _tag_rows(runtime: Runtime, job_id: int) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    t, p = tables.job_tags, tables.job_tag_pairs
    with runtime.db.read() as conn:
        tags = conn.execute(
            sa.select(t.c.tenant_id, t.c.tag, t.c.created).where(t.c.job_id == job_id)
        )
        pairs = conn.execute(
            sa.select(p.c.tenant_id, p.c.first_tag, p.c.second_tag, p.c.created).where(
                p.c.job_id == job_id
            )
        )
        return set(map(tuple, tags)), set(map(tuple, pairs))


def test_the_rows_follow_a_jobs_tags_customer_and_creation(
    runtime: Runtime, stored: list[dict[str, Any]]
) -> None:
    job_id = stored[0]["id"]
    later = START + timedelta(days=3)
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.update(J).where(J.c.id == job_id).values(tags=["lab", "Zeta", "alpha", "lab"])
        )
    tags, pairs = _tag_rows(runtime, job_id)
    created = stored[0]["created"]
    assert {tag for _, tag, _ in tags} == {"lab", "Zeta", "alpha"}
    assert {(first, second) for _, first, second, _ in pairs} == {
        ("Zeta", "alpha"),
        ("Zeta", "lab"),
        ("alpha", "lab"),
    }
    assert {(tenant, at) for tenant, *_, at in tags | pairs} == {(1, created)}

    with runtime.db.transaction() as conn:
        conn.execute(sa.update(J).where(J.c.id == job_id).values(tenant_id=2, created=later))
    tags, pairs = _tag_rows(runtime, job_id)
    assert len(tags) == 3
    assert len(pairs) == 3
    assert {(tenant, at) for tenant, *_, at in tags | pairs} == {(2, later)}

    with runtime.db.transaction() as conn:
        conn.execute(sa.update(J).where(J.c.id == job_id).values(tags=["solo"]))
    assert _tag_rows(runtime, job_id) == ({(2, "solo", later)}, set())

    with runtime.db.transaction() as conn:
        conn.execute(sa.update(J).where(J.c.id == job_id).values(tags=["a", "b"]))
        conn.execute(sa.delete(J).where(J.c.id == job_id))
    assert _tag_rows(runtime, job_id) == (set(), set())


@pytest.mark.postgres
def test_pairs_are_in_code_point_order_under_a_locales_collation(
    postgres_database: str, tmp_path: Path
) -> None:
    """A database whose collation puts 'alpha' before 'Zeta' still writes the pair in code
    point order ('Zeta' < 'alpha'), as SQLite does and as a list looks it up."""
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"jobyard_test_icu_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                "ICU_LOCALE 'en' LOCALE 'C.UTF-8'"
            )
        )
    try:
        url = sa.engine.make_url(normalise_url(POSTGRES_URL)).set(database=name)
        settings = Settings(data_dir=tmp_path, database_url=url.render_as_string(False))
        rt = open_runtime(settings)
        migrate.upgrade(rt.db)
        user_id = accounts.bootstrap_admin(rt).admin_user_id
        with rt.db.transaction() as conn:
            assert conn.scalar(sa.text("SELECT 'alpha' < 'Zeta'"))  # the locale's order
            row = job_row(tenant_id=1, user_id=user_id, status="pending", at=START)
            conn.execute(sa.insert(J).values(**row | {"tags": ["alpha", "Zeta", "lab"]}))
            pairs = conn.execute(
                sa.select(tables.job_tag_pairs.c.first_tag, tables.job_tag_pairs.c.second_tag)
            )
            assert set(map(tuple, pairs)) == {("Zeta", "alpha"), ("Zeta", "lab"), ("alpha", "lab")}
        rt.db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
