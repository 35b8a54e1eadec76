"""The jobs list's key shapes walk an index in the list's order on SQLite: no scan of every
job, no sort of every job (EXPLAIN QUERY PLAN; correctness of plans, not timings)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from jobyard.domain.filters import check_filter, check_sort, parse_filter, parse_sort
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services.runtime import Runtime
from jobyard.store import listing, shadowed, tables
from jobyard.store.jobs import SHADOWED_SORTS, _tag_walk, job_fields, tagged_page
from jobyard.store.tagged import holding

J = tables.jobs

# A filter and a sort, and the index the list walks (a tag filter reads job_tags' index, then
# each job by key).
SHAPES = [
    ((), "-created", "ix_jobs_tenant_id_created_id"),
    ((), "created", "ix_jobs_tenant_id_created_id"),
    ((), "-id", "ix_jobs_tenant_id"),
    ((), "finished", "ix_jobs_tenant_id_finished_id"),
    ((), "package_name", "ix_jobs_tenant_id_package_name_id"),
    ((), "status", "ix_jobs_tenant_id_status_id"),
    ((), "-status", "ix_jobs_tenant_id_status_id"),
    ((), "-package_name", "ix_jobs_tenant_id_package_name_id"),
    ((), "package_id", "ix_jobs_tenant_id_package_id_id"),
    ((), "-device_id", "ix_jobs_tenant_id_target_device_id_id"),
    (("status=pending",), "-id", "ix_jobs_tenant_id_status_id"),
    (("status=completed",), "-created", "ix_jobs_tenant_id_status_created"),
    (("package_id=3",), "id", "ix_jobs_tenant_id_package_id_id"),
    (("package_name=p3",), "-id", "ix_jobs_tenant_id_package_name_id"),
    (("device_id=2",), "-id", "ix_jobs_tenant_id_target_device_id_id"),
    (("device_id=0",), "id", "ix_jobs_tenant_id_target_device_id_id"),
    ((), "-device_name", "ix_jobs_tenant_id_device_name_id"),
    (("device_name=lab-7",), "-id", "ix_jobs_tenant_id_device_name_id"),
    ((), "-user_id", "ix_jobs_tenant_id_user_id_id"),
    (("user_id=2",), "-id", "ix_jobs_tenant_id_user_id_id"),
    (("tags@>{nightly}",), "-id", "ix_job_tags_tenant_id_tag_job_id"),
    (("package_name=p3",), "-created", "ix_jobs_tenant_id_package_name_created_id"),
    (("package_id=3",), "created", "ix_jobs_tenant_id_package_id_created_id"),
    (("device_id=2",), "-created", "ix_jobs_tenant_id_target_device_id_created_id"),
    (("device_name=lab-7",), "-created", "ix_jobs_tenant_id_device_name_created_id"),
    # The keys a run changes (migration 0025), either way.
    ((), "started", "ix_jobs_tenant_id_started_id"),
    ((), "-started", "ix_jobs_tenant_id_started_id"),
    ((), "result_id", "ix_jobs_tenant_id_current_run_id_id"),
    ((), "-result_id", "ix_jobs_tenant_id_current_run_id_id"),
    ((), "exit_code", "ix_jobs_tenant_id_exit_code_id"),
    ((), "-exit_code", "ix_jobs_tenant_id_exit_code_id"),
    # With a status too, which most jobs share: SQLite has no statistics to tell it so.
    (
        ("package_name=p3", "status=completed"),
        "-created",
        "ix_jobs_tenant_id_package_name_created_id",
    ),
    (("package_id=3", "status=completed"), "-created", "ix_jobs_tenant_id_package_id_created_id"),
    (
        ("device_name=lab-7", "status=failed"),
        "-created",
        "ix_jobs_tenant_id_device_name_created_id",
    ),
    (
        ("device_id=2", "status=completed"),
        "-created",
        "ix_jobs_tenant_id_target_device_id_created_id",
    ),
]


def _plan(conn: sa.Connection, filters: tuple[str, ...], sort: str) -> str:
    request = Listing(
        filters=[check_filter(parse_filter(f), JOB_FIELDS) for f in filters],
        sort=check_sort(parse_sort(sort), JOB_FIELDS),
    )
    query = sa.select(J).where(J.c.tenant_id == 1)
    query = listing.apply(query, request, job_fields(1), pg=False, tiebreak=J.c.id)
    sql = query.limit(25).compile(conn, compile_kwargs={"literal_binds": True})
    return "\n".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize(("filters", "sort", "index"), SHAPES)
def test_the_list_walks_an_index_in_its_order(
    runtime: Runtime, filters: tuple[str, ...], sort: str, index: str
) -> None:
    if runtime.pg:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    with runtime.db.read() as conn:
        plan = _plan(conn, filters, sort)
    assert f"INDEX {index} (" in plan, plan
    assert "SCAN jobs" not in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan


TAGS_INDEX = "ix_job_tags_tenant_id_tag_job_id"
TAGS_CREATED_INDEX = "ix_job_tags_tenant_id_tag_created_job_id"
PAIRS_INDEX = "ix_job_tag_pairs_tenant_id_first_tag_second_tag_job_id"
PAIRS_CREATED_INDEX = "ix_job_tag_pairs_tenant_id_first_tag_second_tag_created_job_id"
# Tags alone, a sort, and the index whose range gives the page's ids in the list's order.
TAG_SHAPES = [
    (("nightly",), "-id", TAGS_INDEX),
    (("nightly",), "id", TAGS_INDEX),
    (("nightly",), "", TAGS_INDEX),
    (("nightly",), "-created", TAGS_CREATED_INDEX),
    (("nightly",), "created", TAGS_CREATED_INDEX),
    (("nightly", "lab"), "-id", PAIRS_INDEX),
    (("nightly", "lab"), "created", PAIRS_CREATED_INDEX),
    (("nightly", "lab", "wifi"), "-created", PAIRS_CREATED_INDEX),
]


@pytest.mark.parametrize(("tags", "sort", "index"), TAG_SHAPES)
def test_tags_in_id_or_creation_order_walk_their_index_alone(
    runtime: Runtime, tags: tuple[str, ...], sort: str, index: str
) -> None:
    """Page 1,000 of the jobs of some tags in id or creation order: one range of the tags'
    (or pair's) index gives the page's ids in order; only the page's jobs are read, by key."""
    if runtime.pg:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    request = Listing(
        sort=check_sort(parse_sort(sort), JOB_FIELDS) if sort else (),
        page=PageRequest(1000, 25),
    )
    walk = _tag_walk(request)
    assert walk is not None
    page = tagged_page(request, holding(1, tags), 100_000, walk, job_fields(1), pg=False)
    sql = page.compile(dialect=sa.dialects.sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with runtime.db.read() as conn:
        rows = list(conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    plan = "\n".join(row[-1] for row in rows)
    assert f"COVERING INDEX {index} (" in plan, plan
    assert "SCAN jobs" not in plan, plan
    assert "SCAN job_tag" not in plan, plan
    # The page's own 25 jobs, read by key, are put in creation order; nothing else is sorted.
    sorts = [row for row in rows if "TEMP B-TREE" in row[-1]]
    assert all(row[1] == 0 for row in sorts), plan
    assert len(sorts) <= ("created" in sort), plan


def test_a_first_page_sorted_from_many_jobs_sorts_their_ids_alone(runtime: Runtime) -> None:
    """A week of jobs sorted by id: the week's ids come from the (customer, finished, id)
    index alone and are sorted there; only the page's 25 jobs are read whole."""
    if runtime.pg:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    request = Listing(
        filters=[
            check_filter(parse_filter(f), JOB_FIELDS)
            for f in ("finished>=2026-05-01", "finished<2026-05-08")
        ],
        sort=check_sort(parse_sort("-id"), JOB_FIELDS),
        page=PageRequest(1, 25),
    )
    query = listing.apply(
        sa.select(J).where(J.c.tenant_id == 1), request, job_fields(1), pg=False, tiebreak=J.c.id
    )
    keyed = listing.Keyed(J.c.id, listing.ordering(request, job_fields(1), J.c.id, pg=False))
    first = listing.page_query(query, request.page, replace(keyed, first_page=True))
    sql = first.compile(
        dialect=sa.dialects.sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with runtime.db.read() as conn:
        plan = "\n".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "SEARCH jobs USING COVERING INDEX ix_jobs_tenant_id_finished_id (" in plan, plan
    assert "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan


@pytest.mark.parametrize("sort", ["package_id", "-package_id", "device_id", "-device_id"])
def test_postgres_walks_the_nulls_first_index_of_an_id_that_may_be_null(
    runtime: Runtime, sort: str
) -> None:
    """A package or device id that may be NULL sorts as 0, NULLs first: PostgreSQL's index
    holds them in that order, so the list walks it either way instead of sorting."""
    if not runtime.pg:
        pytest.skip("SQLite's index holds NULLs first already (the SQLite plans above)")
    request = Listing(sort=check_sort(parse_sort(sort), JOB_FIELDS))
    query = listing.apply(
        sa.select(J).where(J.c.tenant_id == 1), request, job_fields(1), pg=True, tiebreak=J.c.id
    )
    with runtime.db.read() as conn:
        sql = query.limit(25).compile(conn, compile_kwargs={"literal_binds": True})
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test's table is tiny
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "_nulls_first_id on jobs" in plan, plan
    assert "Sort" not in plan, plan


def test_postgres_newest_first_indexes_carry_the_status(runtime: Runtime) -> None:
    """A package's or device's jobs of one status, newest first, are paged and counted from
    the index alone on PostgreSQL: the index holds the status too (migration 0019)."""
    if not runtime.pg:
        pytest.skip("SQLite's indexes hold no included columns")
    with runtime.db.read() as conn:
        definitions = dict(
            conn.execute(
                sa.text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' "
                    "AND indexname LIKE 'ix_jobs_tenant_id_%_created_id'"
                )
            ).all()
        )
    newest_first = {f"ix_jobs_tenant_id_{key}_created_id" for key in tables.LISTED_NEWEST_BY}
    assert newest_first <= set(definitions)
    for name in newest_first:
        assert definitions[name].endswith("INCLUDE (status)"), definitions[name]


@pytest.mark.parametrize("sort", ["started", "-started", "result_id", "-result_id", "-exit_code"])
def test_postgres_walks_the_index_of_a_key_a_run_changes(runtime: Runtime, sort: str) -> None:
    """A job's start, run and exit code are indexed on PostgreSQL (migration 0022): a list
    sorted by one walks its index either way instead of sorting every job (SQLite's: the
    shapes of `test_the_list_walks_an_index_in_its_order`)."""
    if not runtime.pg:
        pytest.skip("EXPLAIN's wording is PostgreSQL's")
    request = Listing(sort=check_sort(parse_sort(sort), JOB_FIELDS))
    query = listing.apply(
        sa.select(J).where(J.c.tenant_id == 1), request, job_fields(1), pg=True, tiebreak=J.c.id
    )
    column = sort.lstrip("-").replace("result_id", "current_run_id")
    with runtime.db.read() as conn:
        sql = query.limit(25).compile(conn, compile_kwargs={"literal_binds": True})
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test's table is tiny
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert f"ix_jobs_tenant_id_{column}_id on jobs" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("descending", [False, True])
def test_postgres_tells_jobs_due_at_launch_from_the_index_of_creation(
    runtime: Runtime, descending: bool
) -> None:
    """A list sorted by `run_at` reads the jobs due when launched along the index of creation,
    which holds `run_at` (migration 0024): an index-only walk, not a read of each job."""
    if not runtime.pg:
        pytest.skip("EXPLAIN's wording is PostgreSQL's (test_sorts_read_in_parts covers SQLite)")
    filtered = sa.select(J).where(J.c.tenant_id == 1)
    with runtime.db.read() as conn:
        query = shadowed.merged_query(
            conn, filtered, SHADOWED_SORTS["run_at"], descending=descending, id_column=J.c.id
        )
        sql = query.limit(25).compile(conn, compile_kwargs={"literal_binds": True})
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test's table is tiny
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    walk = "Index Only Scan Backward using" if descending else "Index Only Scan using"
    assert f"{walk} ix_jobs_tenant_id_created_id on jobs" in plan, plan
    assert "Sort" not in plan, plan
