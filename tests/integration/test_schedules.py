"""Firing schedules on both databases: each fire time launches exactly one job however many
schedulers race for it (and across restarts), a paused schedule fires nothing, missed fire
times follow the misfire policy, and "skip if running" skips while the last job is active."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from jobyard.domain.permissions import Principal
from jobyard.services import accounts, authentication, catalog, schedules
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings
from jobyard.store import schedules as schedule_store
from jobyard.store import tables
from jobyard.worker.scheduler import Scheduler
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def admin(runtime: Runtime) -> Principal:
    accounts.bootstrap_admin(runtime)
    return authentication.check_token(runtime, ADMIN_TOKEN).principal


@pytest.fixture
def package_id(runtime: Runtime, admin: Principal) -> int:
    return catalog.create_package(
        runtime, actor=admin, values={"name": "tick", "command": ["true"]}
    ).id


def schedule(runtime: Runtime, admin: Principal, package_id: int, **values: Any) -> int:
    values = {"name": "s", "package_id": package_id} | values
    return schedules.create_schedule(runtime, actor=admin, values=values).id


def fires(runtime: Runtime, schedule_id: int) -> list[Any]:
    with runtime.db.read() as conn:
        return list(
            conn.execute(
                sa.select(tables.schedule_fires)
                .where(tables.schedule_fires.c.schedule_id == schedule_id)
                .order_by(tables.schedule_fires.c.fire_time)
            )
        )


def scheduled_jobs(runtime: Runtime) -> list[Any]:
    with runtime.db.read() as conn:
        return list(
            conn.execute(
                sa.select(tables.jobs.c.id, tables.jobs.c.run_at, tables.jobs.c.created).where(
                    tables.jobs.c.automatic.is_(True)
                )
            )
        )


@pytest.fixture
def other_runtimes(settings: Settings) -> Iterator[list[Runtime]]:
    """Two more processes' worth of database connections on the same database."""
    opened = [open_runtime(settings) for _ in range(2)]
    yield opened
    for rt in opened:
        rt.db.dispose()


def test_racing_schedulers_launch_each_fire_time_once_and_on_time(
    runtime: Runtime,
    admin: Principal,
    package_id: int,
    other_runtimes: list[Runtime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule_id = schedule(runtime, admin, package_id, interval_seconds=1)
    # Three processes' schedulers (each with its own connections), as a fleet runs them:
    # each sleeps until the schedule is due, so all three wake for each fire time.
    schedulers = [Scheduler(rt) for rt in (runtime, *other_runtimes)]
    for scheduler in schedulers:
        scheduler.start()
    time.sleep(3.2)
    for scheduler in schedulers:
        scheduler.stop()

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    fired = fires(runtime, schedule_id)
    launched = scheduled_jobs(runtime)
    assert 2 <= len(fired) <= 4
    assert sorted(f.job_id for f in fired) == sorted(job.id for job in launched)
    assert {f.outcome for f in fired} == {"launched"}
    for fire in fired:
        assert fire.fire_time.microsecond == 0
        # On time: within the second it was due, on a machine running two test processes.
        assert timedelta(0) <= fire.at - fire.fire_time < timedelta(seconds=1)
    assert sorted(job.run_at for job in launched) == [f.fire_time for f in fired]


def test_a_fire_time_is_launched_once_across_restarts(
    runtime: Runtime, admin: Principal, package_id: int, other_runtimes: list[Runtime]
) -> None:
    schedule_id = schedule(runtime, admin, package_id, interval_seconds=60)
    due = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id).next_run
    assert due is not None
    assert schedules.fire_due(runtime, now=due) == 1
    # A scheduler that starts again (another process) with a stale idea of the schedule:
    # the fire time is taken, so it launches nothing, and the schedule moves on.
    with runtime.db.transaction() as conn:
        schedule_store.update_schedule(conn, schedule_id, {"next_run": due})
    assert schedules.fire_due(other_runtimes[0], now=due + timedelta(seconds=1)) == 0
    assert len(scheduled_jobs(runtime)) == 1
    after = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id)
    assert after.next_run == due + timedelta(seconds=60)


def test_the_fire_key_makes_a_concurrent_second_claim_wait_and_find_it_taken(
    runtime: Runtime, admin: Principal, package_id: int, other_runtimes: list[Runtime]
) -> None:
    if not runtime.pg:
        pytest.skip("SQLite has one writer: no two claims are ever concurrent")
    schedule_id = schedule(runtime, admin, package_id, interval_seconds=60)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    second: list[bool] = []
    with runtime.db.transaction() as first:
        assert schedule_store.claim_fire(first, schedule_id=schedule_id, fire_time=at, at=at)

        def claim_again() -> None:
            with other_runtimes[0].db.transaction() as conn:
                second.append(
                    schedule_store.claim_fire(conn, schedule_id=schedule_id, fire_time=at, at=at)
                )

        racer = threading.Thread(target=claim_again)
        racer.start()
        time.sleep(0.3)
        assert second == []  # it waits for the first transaction
    racer.join(5)
    assert second == [False]


def test_a_paused_schedule_fires_nothing_and_resumes_from_now(
    runtime: Runtime, admin: Principal, package_id: int
) -> None:
    schedule_id = schedule(runtime, admin, package_id, cron="* * * * *", paused=True)
    assert schedules.fire_due(runtime, now=datetime.now(UTC) + timedelta(days=1)) == 0
    paused = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id)
    assert paused.next_run is None
    resumed = schedules.resume_schedule(runtime, actor=admin, schedule_id=schedule_id)
    assert resumed.next_run is not None
    assert resumed.next_run > datetime.now(UTC)
    assert resumed.next_run.second == 0
    assert scheduled_jobs(runtime) == []


@pytest.mark.parametrize(("misfire", "launched"), [("skip", 0), ("run_once", 1)])
def test_after_downtime_the_misfire_policy_decides(
    runtime: Runtime, admin: Principal, package_id: int, misfire: str, launched: int
) -> None:
    schedule_id = schedule(runtime, admin, package_id, cron="*/5 * * * *", misfire=misfire)
    first = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id).next_run
    assert first is not None
    back = first + timedelta(minutes=12)  # three fire times missed, the last two minutes ago
    assert schedules.fire_due(runtime, now=back) == launched
    fired = fires(runtime, schedule_id)
    assert [f.fire_time for f in fired] == [first + timedelta(minutes=10)] * launched
    after = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id)
    assert after.next_run == first + timedelta(minutes=15)


def test_skip_if_running_skips_while_the_last_job_is_active(
    runtime: Runtime, admin: Principal, package_id: int
) -> None:
    schedule_id = schedule(runtime, admin, package_id, interval_seconds=10, skip_if_running=True)
    first = schedules.get_schedule(runtime, actor=admin, schedule_id=schedule_id).next_run
    assert first is not None
    assert schedules.fire_due(runtime, now=first) == 1
    assert schedules.fire_due(runtime, now=first + timedelta(seconds=10)) == 0  # still pending
    outcomes = [(f.outcome, f.job_id is None) for f in fires(runtime, schedule_id)]
    assert outcomes == [("launched", False), ("skipped_running", True)]
