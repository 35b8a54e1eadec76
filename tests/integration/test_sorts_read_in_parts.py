"""Lists sorted by a key read in parts: a key whose values are nearly all one, in segments
(the other values along a partial index, the usual one in id order); `run_at`, merged from
the jobs due at launch (in `created` order) and the others (along a partial index); and
`updated`, merged likewise from the ended jobs (in `finished` order) and the others.
Every page, both directions, with and without a filter, on both databases, comes out as
sorting every job would give it; and on SQLite each part walks its index in order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.filters import SortKey, check_filter, parse_filter
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.vocabulary import JOB_FIELDS
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import jobs, segmented, shadowed, tables
from jobyard.store.jobs import PARTS_INDEXED, SEGMENTED_SORTS, SHADOWED_SORTS
from tests.integration.job_rows import job_row

J = tables.jobs
LIMIT = 4
OPTIONS = ("begin_at", "end_at", "extra_cli_args")


def _unusual_values(rng: random.Random, i: int) -> dict[str, Any]:
    """One job's columns: most have the usual value of every key, the rest another one, on
    either side of it where the key has sides."""
    rare = i % 3 == 0
    options: dict[str, Any] = {"begin_at": "", "extra_cli_args": ""}
    if rare:
        options["begin_at"] = rng.choice(["2026-01-01", "b", "a"])
    if i % 7 == 0:
        options = {"begin_at": None}  # an option stored as null or missing reads as ''
    return {
        "priority": rng.choice([-5, 3, 10]) if rare else 0,
        "kind": "external" if i % 4 == 0 else "command",
        "automatic": i % 5 == 0,
        "target_config_id": rng.choice([7, 2, 9]) if rare else None,
        "config_name": rng.choice(["zeta", "alpha"]) if rare else "",
        "options": options,
        "status": "running" if i % 6 == 0 else "completed",
        "package_name": "a" if i % 2 else "b",
    }


def _last_change(rng: random.Random, status: str, at: datetime) -> dict[str, Any]:
    """`updated` and `finished`: a pending job was last changed by its launch, or now and
    then by an edit; a running one by its claim; an ended one by its end, which stamps both
    alike, or now and then by something after its end. Some values tie with other jobs'."""
    if status == "pending":
        edited = rng.random() < 0.3
        return {"updated": at + timedelta(minutes=4 if edited else 0), "finished": None}
    if status == "running":
        return {"updated": at + timedelta(minutes=rng.choice([1, 2, 30])), "finished": None}
    finished = at + timedelta(minutes=rng.choice([3, 5, 45]))
    later = rng.random() < 0.2
    return {"finished": finished, "updated": finished + timedelta(minutes=2 if later else 0)}


def _api_value(row: dict[str, Any], key: str) -> Any:
    """The value the API shows and sorts by."""
    name = key.removeprefix("options.")
    if name in OPTIONS:
        return row["options"].get(name) or ""
    if key == "config_id":
        return row["target_config_id"] or 0
    if key in {"device_id", "target_device_id"}:
        return row.get("target_device_id") or 0
    if key == "package_id":
        return row.get("package_id") or 0
    if key == "active":
        return row["status"] == "running"
    return row[key]


@pytest.fixture
def stored(runtime: Runtime) -> list[dict[str, Any]]:
    """40 jobs of customer 1 and 10 of customer 2 (never listed), each row with its id."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    rng = random.Random(17)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(tables.tenants).values(id=2, name="other", created=start))
        packages = [_package(conn, name, user_id, start) for name in ("p1", "p2", "p3")]
        devices = [_device(conn, name, user_id, start) for name in ("d1", "d2")]
        for i in range(50):
            tenant = 1 if i < 40 else 2
            at = start + timedelta(minutes=i)
            row = job_row(tenant_id=tenant, user_id=user_id, status="completed", at=at)
            row |= _unusual_values(rng, i)
            # Most jobs have a package and a device; some lost theirs (NULL, shown as 0).
            row["package_id"] = rng.choice([*packages, None]) if i % 3 else packages[1]
            row["target_device_id"] = rng.choice([*devices, None])
            if i % 5 == 1:  # launched for later or earlier, or retried; ties with others too
                row["run_at"] = at + timedelta(minutes=rng.choice([-30, 1, 7, 90]))
            if i % 7 == 3:
                row["status"] = "pending"
            row |= _last_change(rng, row["status"], at)
            job_id = conn.execute(sa.insert(J).values(**row).returning(J.c.id)).scalar_one()
            rows.append(row | {"id": job_id})
    return [row for row in rows if row["tenant_id"] == 1]


def _package(conn: sa.Connection, name: str, user_id: int, at: datetime) -> int:
    row = {"tenant_id": 1, "name": name, "kind": "command", "command": ["true"], "env": {}}
    row |= {"positive_results": [], "tags": [], "user_id": user_id, "created": at, "updated": at}
    return int(
        conn.execute(
            sa.insert(tables.packages).values(**row).returning(tables.packages.c.id)
        ).scalar_one()
    )


def _device(conn: sa.Connection, name: str, user_id: int, at: datetime) -> int:
    row = {"tenant_id": 1, "name": name, "attributes": {}, "user_id": user_id}
    row |= {"created": at, "updated": at}
    return int(
        conn.execute(
            sa.insert(tables.devices).values(**row).returning(tables.devices.c.id)
        ).scalar_one()
    )


def _pages(runtime: Runtime, key: str, descending: bool, filters: tuple[str, ...]) -> list[int]:
    listed: list[int] = []
    checked = [check_filter(parse_filter(f), JOB_FIELDS) for f in filters]
    for number in range(1, 40):
        request = Listing(
            filters=checked,
            sort=[SortKey(key, descending)],
            page=PageRequest(number, LIMIT),
        )
        with runtime.db.read() as conn:
            page, _ = jobs.list_jobs(conn, request, tenant_id=1, pg=runtime.pg)
        listed += [job.id for job in page]
        if len(page) < LIMIT:
            return listed
    raise AssertionError("more pages than jobs")


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("filters", [(), ("package_name=a",)], ids=["all", "filtered"])
# With the ids that may be NULL (shown as 0), which sort NULLs first on both databases.
@pytest.mark.parametrize("key", sorted(PARTS_INDEXED | {"package_id", "device_id"}))
def test_every_page_is_in_the_order_of_a_full_sort(
    runtime: Runtime,
    stored: list[dict[str, Any]],
    key: str,
    filters: tuple[str, ...],
    descending: bool,
) -> None:
    kept = [row for row in stored if not filters or row["package_name"] == "a"]
    expected = sorted(kept, key=lambda row: (_api_value(row, key), row["id"]), reverse=descending)
    assert _pages(runtime, key, descending, filters) == [row["id"] for row in expected]


def test_pages_split_across_segments() -> None:
    assert segmented.slices([3, 10, 2], offset=0, limit=4) == [
        segmented.Slice(0, 0, 3),
        segmented.Slice(1, 0, 1),
    ]
    assert segmented.slices([3, 10, 2], offset=12, limit=4) == [
        segmented.Slice(1, 9, 1),
        segmented.Slice(2, 0, 2),
    ]
    assert segmented.slices([0, 5, 0], offset=5, limit=4) == []
    assert segmented.slices([2, 0, 9], offset=1, limit=25) == [
        segmented.Slice(0, 1, 1),
        segmented.Slice(2, 0, 9),
    ]


def _index_of(key: str) -> str:
    if key == "active":
        return "ix_jobs_tenant_id_status_id"
    return f"ix_jobs_unusual_{key.removeprefix('options.')}"


def _plan(conn: sa.Connection, query: sa.Select[Any]) -> str:
    sql = query.compile(conn, compile_kwargs={"literal_binds": True})
    return "\n".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("key", sorted(SEGMENTED_SORTS))
def test_each_segment_walks_an_index_in_its_order(
    runtime: Runtime, key: str, descending: bool
) -> None:
    """The other values' segments are counted and read along their partial index; the usual
    value's along the customer's id index; none is sorted."""
    if runtime.pg:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    segments = SEGMENTED_SORTS[key]
    filtered = sa.select(J).where(J.c.tenant_id == 1)
    with runtime.db.read() as conn:
        for i, segment in enumerate(segments.segments):
            page = segmented.segment_query(filtered, segment, J.c.id, descending=descending)
            plan = _plan(conn, page.limit(25).offset(1000))
            index = "ix_jobs_tenant_id" if i == segments.usual else _index_of(key)
            assert f"INDEX {index} (" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            if i != segments.usual:
                counting = _plan(conn, segmented.count_query(filtered, segment))
                # Either of the (customer, status, …) indexes counts the running jobs; an
                # option's index reads its (few) rows for the option, which SQLite does not
                # take from an index of an expression.
                counted_by = index.removesuffix("_id") if key == "active" else index
                assert f"INDEX {counted_by}" in counting, counting
                assert "SCAN" not in counting, counting


def test_a_sort_of_several_keys_is_not_segmented(runtime: Runtime, stored: list[Any]) -> None:
    """`priority,created`: the segments hold no second key, so the list sorts as before."""
    request = Listing(sort=[SortKey("priority", False), SortKey("created", True)])
    with runtime.db.read() as conn:
        page, _ = jobs.list_jobs(conn, request, tenant_id=1, pg=runtime.pg)
    expected = sorted(stored, key=lambda row: (row["priority"], -row["created"].timestamp()))
    assert [job.id for job in page] == [row["id"] for row in expected][:25]


# Each key read merged with its shadows: the shadows' indexes, and what makes every job's
# key equal to one of its shadows.
SHADOWS = {
    "run_at": (("ix_jobs_tenant_id_created_id",), {"run_at": J.c.created}),
    "updated": (
        ("ix_jobs_tenant_id_finished_id", "ix_jobs_tenant_id_status_created"),
        {"finished": J.c.updated},
    ),
}


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("differing", [False, True], ids=["none-differ", "some-differ"])
@pytest.mark.parametrize("key", sorted(SHADOWED_SORTS))
def test_a_shadowed_key_merges_index_walks(
    runtime: Runtime, stored: list[Any], key: str, differing: bool, descending: bool
) -> None:
    """With jobs whose key differs from its shadows (`run_at` from `created`: due later;
    `updated` from `finished` or `created`: running, edited, changed after its end), the
    page merges those along the key's partial index with the others along each shadow's
    index; with none, it walks the shadows' indexes alone. None is sorted, and `updated`'s
    walks read no job (each index holds the columns its part is told by)."""
    if runtime.pg:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    shadow_indexes, same = SHADOWS[key]
    if not differing:
        with runtime.db.transaction() as conn:
            conn.execute(sa.update(J).values(same))
    filtered = sa.select(J).where(J.c.tenant_id == 1)
    with runtime.db.read() as conn:
        query = shadowed.merged_query(
            conn, filtered, SHADOWED_SORTS[key], descending=descending, id_column=J.c.id
        )
        plan = _plan(conn, query.limit(25).offset(1000))
    covering = "COVERING INDEX" if key == "updated" else "INDEX"
    for index in shadow_indexes:
        assert f"{covering} {index} (" in plan, plan
    assert (f"{covering} ix_jobs_shadowed_{key} (" in plan) is differing, plan
    merged = differing or len(shadow_indexes) > 1
    assert ("MERGE (UNION ALL)" in plan) is merged, plan
    assert "TEMP B-TREE" not in plan, plan


def test_every_shadowed_key_has_its_case_here() -> None:
    assert set(SHADOWS) == set(SHADOWED_SORTS)
