"""How much a worker's engine claims per turn, seen in the runs it starts (the runs of one
turn share its start time): from idle a few, then twice as many while it gets all it asks
for, until the slots are full."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from jobyard.worker.engine import FIRST_CLAIM, Engine
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
SLOTS = 32


def _pending_sleepers(runtime: Runtime, count: int) -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(tables.jobs), [row | {"argv": ["sleep", "5"]}] * count)


def _runs_started(runtime: Runtime) -> list[datetime]:
    with runtime.db.read() as conn:
        return list(conn.execute(sa.select(tables.runs.c.started)).scalars())


def test_an_idle_pool_claims_a_few_first_then_twice_as_many(
    runtime: Runtime, tmp_path: Path
) -> None:
    _pending_sleepers(runtime, SLOTS + 8)
    pool = Engine(runtime, slots=SLOTS)
    pool.start()
    try:
        deadline = time.monotonic() + 20
        while len(started := _runs_started(runtime)) < SLOTS:
            assert time.monotonic() < deadline, f"only {len(started)} runs started"
            time.sleep(0.05)
    finally:
        pool.hand_back_all()
        pool.stop()

    turns = [count for _, count in sorted(Counter(started).items())]
    assert turns == [FIRST_CLAIM, 2 * FIRST_CLAIM, SLOTS - 3 * FIRST_CLAIM]
