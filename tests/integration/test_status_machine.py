"""The database's status machine is the domain's: its trigger allows exactly the job status
changes of `domain.statuses.TRANSITIONS`, every pair of statuses tried."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import sqlalchemy as sa

from jobyard.domain.statuses import JobStatus, can_transition
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from tests.integration.job_rows import job_row

J = tables.jobs


def _job_in(runtime: Runtime, conn: sa.Connection, status: JobStatus, user_id: int) -> int:
    row = job_row(tenant_id=1, user_id=user_id, status=status.value, at=datetime.now(UTC))
    return int(conn.execute(sa.insert(J).values(**row).returning(J.c.id)).scalar_one())


def _database_allows(runtime: Runtime, start: JobStatus, target: JobStatus, user_id: int) -> bool:
    with runtime.db.transaction() as conn:
        job_id = _job_in(runtime, conn, start, user_id)
    try:
        with runtime.db.transaction() as conn:
            conn.execute(sa.update(J).where(J.c.id == job_id).values(status=target.value))
    except sa.exc.DatabaseError:
        return False
    return True


def test_the_trigger_allows_exactly_the_domains_transitions(runtime: Runtime) -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    differ = [
        (start.value, target.value)
        for start, target in itertools.product(JobStatus, repeat=2)
        if _database_allows(runtime, start, target, user_id)
        != (start is target or can_transition(start, target))
    ]
    assert differ == []
