"""A claim reads the due jobs, not every pending one: jobs launched for later (a nightly matrix
queued in the afternoon) do not make each claim step over them (migration 0026), and a
backlog held back by its package's concurrency limit costs a claim a look at each of its
jobs, not a count of the package's jobs for each. The time the next job launched for later
comes due, which an idle worker sleeps until, is read without walking them either. Counted
in the database's own work (SQLite's VM steps, PostgreSQL's rows and loops), never in time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import queue, tables
from tests.integration.job_rows import job_row

J = tables.jobs
NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=1)
FEW, MANY = 10, 1_500


def _pending(
    runtime: Runtime, count: int, at: datetime, *, package_id: int | None = None
) -> list[int]:
    """`count` pending jobs due at `at` (and created then: their ids follow the others')."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=at)
    row["package_id"] = package_id
    with runtime.db.transaction() as conn:
        inserted = conn.execute(sa.insert(J).returning(J.c.id), [row] * count)
        return [job_id for (job_id,) in inserted]


def _replace_due_job(runtime: Runtime, due: list[int]) -> list[int]:
    """The due job deleted and launched again: its id then follows every job before it."""
    with runtime.db.transaction() as conn:
        conn.execute(sa.delete(J).where(J.c.id.in_(due)))
    return _pending(runtime, 1, NOW - timedelta(minutes=1))


def _full_package(runtime: Runtime) -> int:
    """A package limited to one running job, which it runs."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    package = {
        "tenant_id": 1,
        "name": "lab",
        "kind": "command",
        "command": ["true"],
        "env": {},
        "concurrency_limit": 1,
        "positive_results": [],
        "tags": [],
        "user_id": user_id,
        "created": NOW,
        "updated": NOW,
    }
    with runtime.db.transaction() as conn:
        package_id = int(
            conn.execute(
                sa.insert(tables.packages).values(package).returning(tables.packages.c.id)
            ).scalar_one()
        )
        row = job_row(tenant_id=1, user_id=user_id, status="running", at=NOW)
        conn.execute(sa.insert(J).values(row | {"package_id": package_id}))
    return package_id


def _claim_steps(runtime: Runtime, limit: int = 1) -> tuple[int, list[int]]:
    """SQLite's VM steps for a claim of up to `limit` jobs, and the ids it found."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with runtime.db.read() as conn:
        driver: Any = conn.connection.driver_connection
        driver.set_progress_handler(count, 1)
        try:
            rows = queue.next_claimable(conn, NOW, pg=False, limit=limit)
        finally:
            driver.set_progress_handler(None, 1)
    return steps, [row.id for row in rows]


def test_claims_without_stepping_over_jobs_launched_for_later(runtime: Runtime) -> None:
    if runtime.pg:
        _postgres_claims_without_reading_jobs_launched_for_later(runtime)
    else:
        _sqlite_claims_without_stepping_over_jobs_launched_for_later(runtime)


def _sqlite_claims_without_stepping_over_jobs_launched_for_later(runtime: Runtime) -> None:
    _pending(runtime, FEW, LATER)
    _pending(runtime, FEW, LATER + timedelta(hours=1))  # and of other priorities
    _raise_priority(runtime, 3)
    due = _replace_due_job(runtime, [])
    few_steps, found = _claim_steps(runtime, limit=8)  # fewer due than asked for
    assert found == due
    _pending(runtime, MANY - FEW, LATER)
    due = _replace_due_job(runtime, due)
    many_steps, found = _claim_steps(runtime, limit=8)
    assert found == due
    # Stepping over each job launched for later cost about six steps: 9,000 more here
    # (read across priorities at once, a claim walked them whenever it found fewer due jobs
    # than it asked for).
    assert many_steps < few_steps + 500, (few_steps, many_steps)


def _raise_priority(runtime: Runtime, count: int) -> None:
    """The last `count` jobs waiting get priorities of their own (1, 2, ...)."""
    with runtime.db.transaction() as conn:
        ids = conn.execute(sa.select(J.c.id).order_by(J.c.id.desc()).limit(count)).scalars()
        for level, job_id in enumerate(list(ids), start=1):
            conn.execute(sa.update(J).where(J.c.id == job_id).values(priority=level))


def _postgres_claims_without_reading_jobs_launched_for_later(runtime: Runtime) -> None:
    _pending(runtime, MANY, LATER)
    due = _replace_due_job(runtime, [])
    nodes, found = _explained_claim(runtime)
    assert found == due
    assert any("ix_jobs_claimable" in node.get("Index Name", "") for node in nodes), nodes
    removed = max(node.get("Rows Removed by Filter", 0) for node in nodes)
    assert removed < FEW, nodes


def _explained_claim(runtime: Runtime) -> tuple[list[dict[str, Any]], list[int]]:
    """PostgreSQL's plan of the claim query for one job, as run (its nodes), and the ids it
    found."""
    with runtime.db.read() as conn:
        compiled = queue._pg_claim_query().compile(conn)
        given = compiled.construct_params({"now": NOW, "limit": 1})
        conn.exec_driver_sql("SET LOCAL enable_sort = off")  # as the claim runs it
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test's table is tiny
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
        [[plan]] = conn.exec_driver_sql(explain, given).all()
        found = [row.id for row in conn.execute(queue._pg_claim_query(), {"now": NOW, "limit": 1})]
    tree = plan if isinstance(plan, list) else json.loads(plan)
    return list(_nodes(tree[0]["Plan"])), found


def test_a_claim_counts_running_jobs_once_not_for_each_job_held_back(runtime: Runtime) -> None:
    package_id = _full_package(runtime)
    if runtime.pg:
        _postgres_counts_running_jobs_once(runtime, package_id)
        return
    _pending(runtime, FEW * 10, NOW - timedelta(hours=1), package_id=package_id)
    due = _replace_due_job(runtime, [])
    few_steps, found = _claim_steps(runtime)
    assert found == due
    _pending(runtime, FEW * 30, NOW - timedelta(hours=1), package_id=package_id)
    due = _replace_due_job(runtime, due)
    more_steps, found = _claim_steps(runtime)
    assert found == due
    # Four times the held-back jobs: four times the steps over them, not sixteen (as when
    # each held-back job counted the package's jobs again: 100 → 400 took 56k → 823k steps).
    assert more_steps < 5 * few_steps, (few_steps, more_steps)


def _postgres_counts_running_jobs_once(runtime: Runtime, package_id: int) -> None:
    _pending(runtime, FEW * 10, NOW - timedelta(hours=1), package_id=package_id)
    due = _replace_due_job(runtime, [])
    nodes, found = _explained_claim(runtime)
    assert found == due
    running = [node for node in nodes if node.get("Alias") == "running"]
    assert running, nodes
    assert max(node["Actual Loops"] for node in running) == 1, running


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _waiting(runtime: Runtime, at: datetime, *, priority: int = 0, kind: str = "command") -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=at)
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(J).values(row | {"priority": priority, "kind": kind}))


def _next_due_work(runtime: Runtime) -> tuple[int, datetime | None]:
    """The database's work for the next due time (SQLite's VM steps, PostgreSQL's rows
    read in all its plan's nodes), and the time."""
    with runtime.db.read() as conn:
        if runtime.pg:
            query = queue._NEXT_DUE[True]
            [[plan]] = conn.execute(
                sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}"), {"after": NOW}
            ).all()
            tree = plan if isinstance(plan, list) else json.loads(plan)
            nodes = list(_nodes(tree[0]["Plan"]))
            work = sum(node["Actual Rows"] * node["Actual Loops"] for node in nodes)
            work += sum(node.get("Rows Removed by Filter", 0) for node in nodes)
            return work, queue.next_due(conn, NOW, pg=True)
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        driver: Any = conn.connection.driver_connection
        driver.set_progress_handler(count, 1)
        try:
            due = queue.next_due(conn, NOW, pg=False)
        finally:
            driver.set_progress_handler(None, 1)
        return steps, due


def test_the_next_due_time_is_read_level_by_level_not_job_by_job(runtime: Runtime) -> None:
    assert _next_due_work(runtime)[1] is None
    _pending(runtime, FEW, NOW - timedelta(minutes=1))  # due already: claimed, not waited for
    _waiting(runtime, NOW + timedelta(hours=1), kind="external")  # never claimed
    assert _next_due_work(runtime)[1] is None
    _pending(runtime, FEW, LATER)
    _waiting(runtime, NOW + timedelta(hours=3), priority=5)
    _waiting(runtime, NOW + timedelta(hours=2), priority=-2)
    few, due = _next_due_work(runtime)
    assert due == NOW + timedelta(hours=2)
    _pending(runtime, MANY, LATER)
    many, due = _next_due_work(runtime)
    assert due == NOW + timedelta(hours=2)
    assert many < few + 100, (few, many)  # a walk through the waiting jobs: thousands more
