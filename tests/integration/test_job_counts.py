"""`job_counts` and, on SQLite, `job_source_counts` (kept by triggers) stay exact whatever
writes `jobs`, and lists that take their total from them, or read deep pages by key, answer
exactly what counting and sorting would.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.filters import Combine, Filter, Op, SortKey
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.statuses import TERMINAL
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import jobs as job_store
from jobyard.store import tables
from tests.integration.job_rows import job_row

J = tables.jobs
START = datetime(2026, 1, 1, tzinfo=UTC)


def _row(tenant_id: int, user_id: int, status: str, minute: int) -> dict[str, Any]:
    at = START + timedelta(minutes=minute)
    return job_row(
        tenant_id=tenant_id, user_id=user_id, status=status, at=at, package_name=f"p{minute % 3}"
    )


@pytest.fixture
def tenants(runtime: Runtime) -> tuple[int, int, int]:
    """The system tenant, a second one, and the admin user who owns the jobs."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        other = conn.execute(
            sa.insert(tables.tenants)
            .values(name="other", created=START)
            .returning(tables.tenants.c.id)
        ).scalar_one()
    return 1, int(other), user_id


def _insert(runtime: Runtime, rows: list[dict[str, Any]]) -> list[int]:
    with runtime.db.transaction() as conn:
        inserted = conn.execute(sa.insert(J).values(rows).returning(J.c.id))
        return [int(i) for i in inserted.scalars()]


def _counts(conn: sa.Connection) -> dict[tuple[int, str], int]:
    C = tables.job_counts  # noqa: N806
    query = sa.select(C.c.tenant_id, C.c.status, sa.func.sum(C.c.n)).group_by(
        C.c.tenant_id, C.c.status
    )
    return {(t, s): int(n) for t, s, n in conn.execute(query) if n}


def _actual(conn: sa.Connection) -> dict[tuple[int, str], int]:
    query = sa.select(J.c.tenant_id, J.c.status, sa.func.count()).group_by(
        J.c.tenant_id, J.c.status
    )
    return {(t, s): int(n) for t, s, n in conn.execute(query)}


SOURCE = (
    tables.jobs.c.tenant_id,
    J.c.status,
    J.c.package_name,
    sa.func.coalesce(J.c.package_id, 0),
    J.c.device_name,
    sa.func.coalesce(J.c.target_device_id, 0),
)


def _source_counts(conn: sa.Connection) -> dict[tuple[Any, ...], int]:
    S = tables.job_source_counts  # noqa: N806
    columns = (S.c.tenant_id, S.c.status, S.c.package_name, S.c.package_id, S.c.device_name)
    query = sa.select(*columns, S.c.device_id, S.c.n).where(S.c.n != 0)
    return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(query)}


def _actual_by_source(conn: sa.Connection) -> dict[tuple[Any, ...], int]:
    """Only ended jobs are counted by package and device."""
    ended = [status.value for status in TERMINAL]
    query = sa.select(*SOURCE, sa.func.count()).where(J.c.status.in_(ended)).group_by(*SOURCE)
    return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(query)}


def _tag_counts(conn: sa.Connection) -> dict[tuple[Any, ...], int]:
    """The counts by key, summed (PostgreSQL may hold several delta rows for a key)."""
    S = tables.job_tag_counts  # noqa: N806
    key = (S.c.tenant_id, S.c.status, S.c.first_tag, S.c.second_tag)
    query = sa.select(*key, sa.func.sum(S.c.n)).group_by(*key)
    return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(query) if row[-1]}


def _actual_by_tags(conn: sa.Connection) -> dict[tuple[Any, ...], int]:
    """Each ended job counted once for each of its tags and each pair of them."""
    ended = [status.value for status in TERMINAL]
    counted: dict[tuple[Any, ...], int] = {}
    query = sa.select(J.c.tenant_id, J.c.status, J.c.tags).where(J.c.status.in_(ended))
    for tenant_id, status, tags in conn.execute(query):
        held = sorted(set(tags))
        keys = [(t, "") for t in held] + [(a, b) for a in held for b in held if a < b]
        for first, second in keys:
            key = (tenant_id, status, first, second)
            counted[key] = counted.get(key, 0) + 1
    return counted


def _assert_exact(runtime: Runtime) -> None:
    with runtime.db.read() as conn:
        assert _counts(conn) == _actual(conn)
        assert _tag_counts(conn) == _actual_by_tags(conn)
        if not runtime.pg:  # PostgreSQL counts a package's statuses from its indexes
            assert _source_counts(conn) == _actual_by_source(conn)


def _set_status(runtime: Runtime, ids: list[int], status: str) -> None:
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(J).where(J.c.id.in_(ids)).values(status=status))


def test_counts_follow_inserts_status_changes_and_deletes(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    mine, other, user = tenants
    ids = _insert(runtime, [_row(mine, user, "pending", m) for m in range(12)])
    theirs = _insert(runtime, [_row(other, user, "pending", m) for m in range(5)])
    _insert(runtime, [_row(mine, user, "pending", 99)])
    _assert_exact(runtime)

    _set_status(runtime, ids[:8], "running")  # one statement, many rows
    _set_status(runtime, ids[:3], "completed")
    _set_status(runtime, ids[3:4], "failed")
    _set_status(runtime, ids[8:10], "cancelled")
    _set_status(runtime, theirs[:2], "cancelled")
    _set_status(runtime, ids[:3], "completed")  # not a change
    _assert_exact(runtime)

    with runtime.db.transaction() as conn:
        conn.execute(sa.delete(J).where(J.c.id.in_([*ids[1:5], *ids[9:11], theirs[0]])))
    _assert_exact(runtime)

    with runtime.db.engine.connect() as conn:
        conn.execute(sa.update(J).where(J.c.id == ids[11]).values(status="running"))
        conn.rollback()
    _assert_exact(runtime)
    with runtime.db.read() as conn:
        assert _counts(conn)[(other, "pending")] == 3


def test_source_counts_follow_a_package_or_device_going_away(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """A deleted package or device leaves its jobs with no id (0 in the counts)."""
    mine, _, user = tenants
    with runtime.db.transaction() as conn:
        package = conn.execute(
            sa.insert(tables.packages)
            .values(tenant_id=mine, name="p1", kind="command", command=["true"], env={})
            .values(positive_results=[], tags=[], user_id=user, created=START, updated=START)
            .returning(tables.packages.c.id)
        ).scalar_one()
        device = conn.execute(
            sa.insert(tables.devices)
            .values(tenant_id=mine, name="d1", attributes={}, user_id=user)
            .values(created=START, updated=START)
            .returning(tables.devices.c.id)
        ).scalar_one()
    rows = [_row(mine, user, "completed", m) for m in range(6)]
    for i, row in enumerate(rows):
        row |= {"package_id": package if i % 2 else None, "device_name": "d1" if i % 3 else ""}
        row |= {"target_device_id": device if i % 3 else None}
    _insert(runtime, rows)
    _assert_exact(runtime)
    with runtime.db.transaction() as conn:
        conn.execute(sa.delete(tables.packages).where(tables.packages.c.id == package))
        conn.execute(sa.delete(tables.devices).where(tables.devices.c.id == device))
    _assert_exact(runtime)


def test_tag_counts_follow_ends_tag_changes_and_deletes(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    mine, other, user = tenants
    tag_sets = [["nightly"], ["lab", "nightly"], ["b", "a", "c", "a"], [], ["é", "e"]]
    rows = [_row(mine, user, "pending", m) | {"tags": tag_sets[m % 5]} for m in range(10)]
    ids = _insert(runtime, rows)
    theirs = _insert(runtime, [_row(other, user, "completed", 1) | {"tags": ["nightly"]}])
    _assert_exact(runtime)

    _set_status(runtime, ids[:8], "running")
    _set_status(runtime, ids[:5], "completed")
    _set_status(runtime, ids[5:7], "failed")
    _assert_exact(runtime)
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(J).where(J.c.id == ids[1]).values(tags=["lab"]))
        conn.execute(sa.update(J).where(J.c.id == ids[3]).values(tags=["x", "y"]))
        conn.execute(sa.update(J).where(J.c.id == ids[6]).values(tenant_id=other))
        conn.execute(sa.delete(J).where(J.c.id.in_([ids[2], theirs[0]])))
    _assert_exact(runtime)


def test_a_refused_transition_changes_no_count(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    mine, _, user = tenants
    [job] = _insert(runtime, [_row(mine, user, "completed", 1)])
    with pytest.raises(sa.exc.DatabaseError):
        _set_status(runtime, [job], "running")
    _assert_exact(runtime)


UNCOUNTING_TRIGGERS = ("jobs_source_count_leave", "jobs_tag_count_leave")


def _claim_and_end_steps(path: str, job_id: int, *, dropped: tuple[str, ...] = ()) -> int:
    """SQLite's VM steps for a job's claim and end, with `dropped` triggers gone (the
    transaction is rolled back: the job and the triggers stay as they were)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for name in dropped:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("SELECT 1 FROM jobs LIMIT 1")  # the schema read, out of the count
        conn.set_progress_handler(count, 1)
        for status in ("running", "completed"):
            conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
        conn.set_progress_handler(None, 1)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return steps


def test_a_claim_and_an_end_call_no_trigger_that_uncounts_an_ended_job(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """The triggers that take an ended job out of its counts fire when its customer,
    package, device or tags change; an ended job's status never changes, so a claim and an
    end (which set the status) do not call them: SQLite loads the old row's columns a
    trigger reads before it tests its WHEN (migration 0028)."""
    if runtime.pg:
        pytest.skip("PostgreSQL tests a row trigger's WHEN before it calls anything")
    mine, _, user = tenants
    [job] = _insert(runtime, [_row(mine, user, "pending", 1) | {"tags": ["lab", "nightly"]}])
    path = str(runtime.db.sqlite_file)
    with_them = _claim_and_end_steps(path, job)
    assert with_them == _claim_and_end_steps(path, job, dropped=UNCOUNTING_TRIGGERS)
    _set_status(runtime, [job], "running")
    _set_status(runtime, [job], "completed")
    _assert_exact(runtime)


def test_an_insert_calls_one_trigger_for_a_job_inserted_ended(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """SQLite calls each insert trigger for each row before it tests its `WHEN`: a launch
    (of pending jobs) calls the job counts', the tags' and one for a job inserted already
    ended (migration 0029), whose counts stay exact, tagged or not."""
    if runtime.pg:
        pytest.skip("PostgreSQL counts inserts once a statement")
    conn = sqlite3.connect(str(runtime.db.sqlite_file))
    try:
        program = conn.execute(
            "EXPLAIN INSERT INTO jobs (tenant_id, status, package_name, kind, options, tags, "
            "context, argv, env, interfaces, interface_names, run_at, user_id, created, updated) "
            "VALUES (1, 'pending', 'p', 'command', '{}', '[]', '{}', '[]', '{}', '[]', '[]', "
            "'2026-01-01', 1, '2026-01-01', '2026-01-01')"
        ).fetchall()
    finally:
        conn.close()
    assert [op[1] for op in program].count("Program") == 3  # a trigger called, each
    mine, _, user = tenants
    ended = [_row(mine, user, "failed", m) | {"tags": [["a"], [], ["b", "a"]][m]} for m in range(3)]
    _insert(runtime, ended)
    _assert_exact(runtime)


def _listing(*filters: Filter, combine: Combine = Combine.INTER) -> Listing:
    return Listing(filters=filters, combine=combine, page=PageRequest(page=1, limit=2))


STATUS_LISTINGS = {
    "no filter": _listing(),
    "one status": _listing(Filter("status", Op.EQ, "running")),
    "a status nobody has": _listing(Filter("status", Op.EQ, "lost")),
    "two statuses, union": _listing(
        Filter("status", Op.EQ, "running"),
        Filter("status", Op.EQ, "pending"),
        combine=Combine.UNION,
    ),
    "two statuses, inter": _listing(
        Filter("status", Op.EQ, "running"), Filter("status", Op.EQ, "pending")
    ),
    "the same status twice": _listing(
        Filter("status", Op.EQ, "running"), Filter("status", Op.EQ, "running")
    ),
    "status and another field": _listing(
        Filter("status", Op.EQ, "running"), Filter("package_name", Op.EQ, "p1")
    ),
    "status, not equal": _listing(Filter("status", Op.NE, "running")),
    "package alone": _listing(Filter("package_name", Op.EQ, "p2")),
    "package and status": _listing(
        Filter("package_name", Op.EQ, "p0"), Filter("status", Op.EQ, "completed")
    ),
    "no package (id 0) and status": _listing(
        Filter("package_id", Op.EQ, "0"), Filter("status", Op.EQ, "pending")
    ),
    "no package (id 0) and an ended status": _listing(
        Filter("package_id", Op.EQ, "0"), Filter("status", Op.EQ, "completed")
    ),
    "an ended status and another": _listing(
        Filter("status", Op.EQ, "completed"),
        Filter("device_name", Op.EQ, ""),
        Filter("status", Op.EQ, "running"),
    ),
    "no device, by id and name, and status": _listing(
        Filter("device_id", Op.EQ, "0"),
        Filter("device_name", Op.EQ, ""),
        Filter("status", Op.EQ, "running"),
    ),
    "two packages, inter": _listing(
        Filter("package_name", Op.EQ, "p0"), Filter("package_name", Op.EQ, "p1")
    ),
    "two packages, union": _listing(
        Filter("package_name", Op.EQ, "p0"),
        Filter("package_name", Op.EQ, "p1"),
        combine=Combine.UNION,
    ),
    "package and a status not equal": _listing(
        Filter("package_name", Op.EQ, "p0"), Filter("status", Op.NE, "completed")
    ),
    "a page past the end": Listing(
        filters=(Filter("package_name", Op.EQ, "p1"),), page=PageRequest(page=9, limit=2)
    ),
    "status as an array": _listing(Filter("status", Op.EQ, ("running", "pending"))),
    "a tag and an ended status": _listing(
        Filter("tags", Op.CONTAINS, ("nightly",)), Filter("status", Op.EQ, "completed")
    ),
    "two tags and an ended status": _listing(
        Filter("status", Op.EQ, "completed"), Filter("tags", Op.CONTAINS, ("nightly", "lab"))
    ),
    "a tag twice and an ended status": _listing(
        Filter("options.tags", Op.CONTAINS, ("lab", "lab")), Filter("status", Op.EQ, "failed")
    ),
    "three tags and an ended status": _listing(
        Filter("tags", Op.CONTAINS, ("nightly", "lab", "x")), Filter("status", Op.EQ, "completed")
    ),
    "a tag and two ended statuses": _listing(
        Filter("tags", Op.CONTAINS, ("lab",)),
        Filter("status", Op.EQ, "completed"),
        Filter("status", Op.EQ, "failed"),
    ),
    "a tag and a status not ended": _listing(
        Filter("tags", Op.CONTAINS, ("lab",)), Filter("status", Op.EQ, "running")
    ),
    "a tag, an ended status, union": _listing(
        Filter("tags", Op.CONTAINS, ("lab",)),
        Filter("status", Op.EQ, "completed"),
        combine=Combine.UNION,
    ),
    "a tag, an ended status and a package": _listing(
        Filter("tags", Op.CONTAINS, ("nightly",)),
        Filter("status", Op.EQ, "completed"),
        Filter("package_name", Op.EQ, "p1"),
    ),
}
TAG_SETS = [["nightly"], ["lab", "nightly"], ["lab"], [], ["nightly", "lab", "x"]]


@pytest.mark.parametrize("name", STATUS_LISTINGS)
def test_list_totals_are_exact(runtime: Runtime, tenants: tuple[int, int, int], name: str) -> None:
    mine, other, user = tenants
    rows = [_row(mine, user, "pending", m) | {"tags": TAG_SETS[m % 5]} for m in range(15)]
    ids = _insert(runtime, rows)
    _insert(runtime, [_row(other, user, "pending", m) | {"tags": ["lab"]} for m in range(7)])
    _set_status(runtime, ids[:11], "running")
    _set_status(runtime, ids[:6], "completed")
    _set_status(runtime, ids[6:8], "failed")
    request = STATUS_LISTINGS[name]
    everything = Listing(
        filters=request.filters, combine=request.combine, page=PageRequest(page=1, limit=None)
    )
    with runtime.db.read() as conn:
        page, total = job_store.list_jobs(conn, request, tenant_id=mine, pg=runtime.pg)
        every, _ = job_store.list_jobs(conn, everything, tenant_id=mine, pg=runtime.pg)
    assert total == len(every)
    assert [j.id for j in page] == [j.id for j in every][request.page.offset :][:2]


@pytest.mark.parametrize(
    "sort",
    [
        (SortKey("created", True),),
        (SortKey("created", False),),
        (SortKey("package_name", False), SortKey("created", True)),
        (),
    ],
)
def test_deep_pages_are_slices_of_the_whole_list(
    runtime: Runtime, tenants: tuple[int, int, int], sort: tuple[SortKey, ...]
) -> None:
    mine, _, user = tenants
    # Repeated minutes make ties, which the id breaks.
    _insert(runtime, [_row(mine, user, "pending", m // 2) for m in range(23)])
    with runtime.db.read() as conn:

        def ids(page: PageRequest) -> list[int]:
            request = Listing(filters=(Filter("status", Op.EQ, "pending"),), sort=sort, page=page)
            found, _ = job_store.list_jobs(conn, request, tenant_id=mine, pg=runtime.pg)
            return [j.id for j in found]

        whole = ids(PageRequest(page=1, limit=None))
        assert len(whole) == 23
        for number in (1, 2, 3, 4, 5):
            assert ids(PageRequest(page=number, limit=5)) == whole[(number - 1) * 5 :][:5]


def _postgres_only(runtime: Runtime) -> None:
    if not runtime.pg:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")


def test_concurrent_status_changes_never_wait_on_a_count(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """Two transactions moving different jobs between the same statuses both proceed: a
    shared counter row would make the second wait for the first to commit."""
    _postgres_only(runtime)
    mine, _, user = tenants
    first, second = _insert(runtime, [_row(mine, user, "pending", m) for m in range(2)])
    with runtime.db.engine.connect() as holder:
        with holder.begin():
            holder.execute(sa.update(J).where(J.c.id == first).values(status="running"))
            with runtime.db.transaction() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
                conn.execute(sa.update(J).where(J.c.id == second).values(status="running"))
                conn.execute(sa.insert(J).values(_row(mine, user, "pending", 5)))
        _assert_exact(runtime)
    with runtime.db.read() as conn:
        assert _counts(conn)[(mine, "running")] == 2


def test_concurrent_ends_of_tagged_jobs_never_wait_on_a_count(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """Two transactions ending jobs of the same tags both proceed; later ends fold the
    deltas of a key now and then, so that a key keeps a few rows."""
    _postgres_only(runtime)
    mine, _, user = tenants
    rows = [_row(mine, user, "running", m) | {"tags": ["lab", "nightly"]} for m in range(40)]
    first, second, *others = _insert(runtime, rows)
    with runtime.db.engine.connect() as holder, holder.begin():
        holder.execute(sa.update(J).where(J.c.id == first).values(status="completed"))
        with runtime.db.transaction() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
            conn.execute(sa.update(J).where(J.c.id == second).values(status="completed"))
    _assert_exact(runtime)
    for job_id in others:
        _set_status(runtime, [job_id], "completed")
    _assert_exact(runtime)
    C = tables.job_tag_counts  # noqa: N806
    with runtime.db.read() as conn:
        rows_of_key = sa.select(sa.func.count()).where(
            C.c.first_tag == "lab", C.c.second_tag == "nightly", C.c.status == "completed"
        )
        assert conn.execute(rows_of_key).scalar_one() < len(rows) / 2


def test_a_statement_of_many_tagged_jobs_adds_one_delta_a_key(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    """PostgreSQL counts tags once a statement: a bulk insert or delete of many tagged jobs
    (a copy, a retention sweep) leaves a row a key, not a row a job."""
    _postgres_only(runtime)
    mine, _, user = tenants
    rows = [_row(mine, user, "completed", m) | {"tags": ["lab", "nightly"]} for m in range(50)]
    ids = _insert(runtime, rows)
    C = tables.job_tag_counts  # noqa: N806
    rows_of_key = sa.select(sa.func.count()).where(C.c.first_tag == "lab", C.c.second_tag == "")
    with runtime.db.read() as conn:
        assert conn.execute(rows_of_key).scalar_one() == 1
    with runtime.db.transaction() as conn:
        conn.execute(sa.delete(J).where(J.c.id.in_(ids[:30])))
    _assert_exact(runtime)
    with runtime.db.read() as conn:
        assert conn.execute(rows_of_key).scalar_one() <= 2  # 2 statements


def test_repeatable_read_writers_keep_counts_exact(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    _postgres_only(runtime)
    mine, _, user = tenants
    ids = _insert(runtime, [_row(mine, user, "pending", m) for m in range(4)])
    with runtime.db.engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(sa.update(J).where(J.c.id.in_(ids[:3])).values(status="running"))
            conn.execute(sa.delete(J).where(J.c.id == ids[3]))
    _assert_exact(runtime)
    _set_status(runtime, ids[:1], "completed")  # a read committed writer folds what was left
    _assert_exact(runtime)
    with runtime.db.read() as conn:
        rows = conn.execute(
            sa.select(sa.func.count()).where(tables.job_counts.c.status == "running")
        ).scalar_one()
    assert rows == 1


def test_truncating_jobs_empties_the_counts(
    runtime: Runtime, tenants: tuple[int, int, int]
) -> None:
    _postgres_only(runtime)
    mine, _, user = tenants
    _insert(runtime, [_row(mine, user, "pending", m) for m in range(3)])
    with runtime.db.transaction() as conn:
        conn.execute(sa.text("TRUNCATE jobs CASCADE"))
    _assert_exact(runtime)
