"""Retention on both databases: the sweep deletes exactly the finished jobs a customer's and
a package's retention let go (by age, by the newest N of a package) and the output kept
shorter than its job, nothing else; the dry run foresaw it; counts go to the audit trail;
expired idempotency keys go; SQLite's file gives the space back."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.permissions import Principal, choose_tenant
from jobyard.services import accounts, authentication, catalog, retention, schedules
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings
from jobyard.store import tables
from jobyard.worker.retention import Retainer
from tests.conftest import ADMIN_TOKEN
from tests.integration.job_rows import job_row

NOW = datetime.now(UTC).replace(microsecond=0)
CHUNKS = 3  # output chunks per run


@pytest.fixture
def admin(runtime: Runtime) -> Principal:
    accounts.bootstrap_admin(runtime)
    return authentication.check_token(runtime, ADMIN_TOKEN).principal


def package(rt: Runtime, actor: Principal, name: str, **values: Any) -> int:
    made = catalog.create_package(
        rt, actor=actor, values={"name": name, "command": ["true"]} | values
    )
    return made.id


def job(
    rt: Runtime,
    actor: Principal,
    package_id: int,
    *,
    ago: timedelta,
    status: str = "completed",
    tenant_id: int = 1,
) -> int:
    """A job created and ended `ago`, with a run and its output (unless pending)."""
    at = NOW - ago
    row = job_row(tenant_id=tenant_id, user_id=actor.user_id, status=status, at=at)
    with rt.db.read() as conn:
        name = conn.execute(
            sa.select(tables.packages.c.name).where(tables.packages.c.id == package_id)
        ).scalar_one()
    row |= {"package_id": package_id, "package_name": name, "finished": at}
    if status == "running":
        row["finished"] = None
    if status == "pending":
        row["finished"] = None
    with rt.db.transaction() as conn:
        job_id = int(
            conn.execute(
                sa.insert(tables.jobs).values(**row).returning(tables.jobs.c.id)
            ).scalar_one()
        )
        if status != "pending":
            run_id = conn.execute(
                sa.insert(tables.runs)
                .values(
                    job_id=job_id,
                    attempt=1,
                    run_key=job_id,
                    status=status,
                    worker="w",
                    started=at,
                    finished=row["finished"],
                )
                .returning(tables.runs.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(tables.run_output),
                [
                    {"run_id": run_id, "stream": "stdout", "offset": n, "data": b"x" * 100}
                    for n in range(CHUNKS)
                ],
            )
    return job_id


def job_ids(rt: Runtime) -> set[int]:
    with rt.db.read() as conn:
        return set(conn.execute(sa.select(tables.jobs.c.id)).scalars())


def chunks_of(rt: Runtime, job_id: int) -> int:
    with rt.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.run_output)
                .join(tables.runs, tables.runs.c.id == tables.run_output.c.run_id)
                .where(tables.runs.c.job_id == job_id)
            ).scalar_one()
        )


def test_the_sweep_deletes_what_retention_lets_go_and_nothing_else(
    runtime: Runtime, admin: Principal
) -> None:
    rt = runtime
    acme = accounts.create_tenant(rt, actor=admin, name="acme")
    plain = package(rt, admin, "plain")  # the customer's: 7 days
    capped = package(rt, admin, "capped", keep_last=3, output_days=1)
    old = [job(rt, admin, plain, ago=timedelta(days=10)) for _ in range(3)]
    young = [job(rt, admin, plain, ago=timedelta(hours=1)) for _ in range(2)]
    pending = job(rt, admin, plain, ago=timedelta(days=30), status="pending")
    running = job(rt, admin, plain, ago=timedelta(days=30), status="running")
    oldest_capped = job(rt, admin, capped, ago=timedelta(days=5))
    outdated_output = job(rt, admin, capped, ago=timedelta(days=3), status="failed")
    recent_capped = [job(rt, admin, capped, ago=timedelta(hours=h)) for h in (2, 1)]
    their_package = catalog.create_package(
        rt,
        actor=choose_tenant(admin, acme),
        values={"name": "theirs", "command": ["true"]},
    ).id
    theirs = job(rt, admin, their_package, ago=timedelta(days=100), tenant_id=acme)
    retention.set_retention(rt, actor=admin, values={"keep_days": 7})

    foreseen = retention.preview(rt, actor=admin, now=NOW)
    assert (foreseen.jobs, foreseen.output_chunks) == (4, CHUNKS)
    by_package = {p["package_name"]: (p["jobs"], p["output_chunks"]) for p in foreseen.packages}
    assert by_package == {"plain": (3, 0), "capped": (1, CHUNKS)}
    assert len(job_ids(rt)) == 12  # a dry run deletes nothing

    swept = retention.sweep(rt, now=NOW)

    assert (swept.jobs, swept.outputs) == (4, CHUNKS)
    kept = {*young, pending, running, outdated_output, *recent_capped, theirs}
    assert job_ids(rt) == kept
    assert not set(old) & job_ids(rt)
    assert oldest_capped not in job_ids(rt)
    assert chunks_of(rt, outdated_output) == 0  # output kept shorter than its job
    assert chunks_of(rt, recent_capped[0]) == chunks_of(rt, theirs) == CHUNKS
    with rt.db.read() as conn:
        audited = conn.execute(
            sa.select(tables.audit_events.c.detail).where(
                tables.audit_events.c.action == "retention.delete"
            )
        ).scalar_one()
    assert audited == {"jobs": 4, "output_chunks": CHUNKS}
    again = retention.sweep(rt, now=NOW)
    assert (again.jobs, again.outputs) == (0, 0)
    assert retention.preview(rt, actor=admin, now=NOW).jobs == 0


def test_expired_idempotency_keys_go_and_sqlite_gives_space_back(
    runtime: Runtime, admin: Principal
) -> None:
    rt = runtime
    with rt.db.transaction() as conn:
        conn.execute(
            sa.insert(tables.idempotency_keys),
            [
                {
                    "tenant_id": 1,
                    "key": "old",
                    "fingerprint": "f",
                    "job_ids": [],
                    "created": NOW - timedelta(hours=25),
                },
                {"tenant_id": 1, "key": "new", "fingerprint": "f", "job_ids": [], "created": NOW},
            ],
        )
    plain = package(rt, admin, "plain", keep_days=1)
    now = NOW
    rows = []
    for n in range(1500):
        row = job_row(
            tenant_id=1, user_id=admin.user_id, status="completed", at=now - timedelta(days=2)
        )
        rows.append(
            row
            | {"package_id": plain, "finished": row["created"], "env": {"pad": "p" * 1000 + str(n)}}
        )
    with rt.db.transaction() as conn:
        conn.execute(sa.insert(tables.jobs), rows)
    size_before = _pages(rt)

    swept = retention.sweep(rt, now=now)

    assert (swept.jobs, swept.keys) == (1500, 1)
    with rt.db.read() as conn:
        assert list(conn.execute(sa.select(tables.idempotency_keys.c.key)).scalars()) == ["new"]
    if rt.db.is_sqlite:
        assert _pages(rt) < size_before / 2  # the freed pages went back to the file system


def _pages(rt: Runtime) -> int:
    with rt.db.read() as conn:
        if not rt.db.is_sqlite:
            return 0
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def test_the_retention_thread_sweeps_in_the_background(
    runtime: Runtime, admin: Principal, settings: Settings
) -> None:
    plain = package(runtime, admin, "plain", keep_days=1)
    old = job(runtime, admin, plain, ago=timedelta(days=2))
    young = job(runtime, admin, plain, ago=timedelta(hours=2))
    rt = open_runtime(settings.with_overrides(retention_interval_seconds=0.05))
    retainer = Retainer(rt)
    retainer.start()
    try:
        deadline = time.monotonic() + 10
        while old in job_ids(runtime):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        retainer.stop()
        rt.db.dispose()
    assert job_ids(runtime) == {young}


def test_a_schedules_oldest_fire_times_are_forgotten(runtime: Runtime, admin: Principal) -> None:
    made = schedules.create_schedule(
        runtime,
        actor=admin,
        values={"name": "s", "package_id": package(runtime, admin, "p"), "interval_seconds": 60},
    )
    first = datetime(2026, 1, 1, tzinfo=UTC)
    fires = [
        {
            "schedule_id": made.id,
            "fire_time": first + timedelta(minutes=n),
            "outcome": "launched",
            "at": first,
        }
        for n in range(retention.FIRES_KEPT + 5)
    ]
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(tables.schedule_fires), fires)

    retention.sweep(runtime)

    with runtime.db.read() as conn:
        kept = conn.execute(sa.select(sa.func.min(tables.schedule_fires.c.fire_time))).scalar_one()
        count = conn.execute(sa.select(sa.func.count()).select_from(tables.schedule_fires)).scalar()
    assert (count, kept) == (retention.FIRES_KEPT, first + timedelta(minutes=5))


def test_db_vacuum_makes_an_older_sqlite_file_give_space_back(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as made_before:  # auto_vacuum off, as files made before 0013
        made_before.execute("CREATE TABLE t (x)")
    rt = open_runtime(Settings(data_dir=tmp_path, database_url=f"sqlite:///{path}"))
    try:
        with rt.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 0
        assert retention.compact_sqlite(rt)
        with rt.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2
    finally:
        rt.db.dispose()
