"""The launch's quick transaction (`Database.quick_transaction`, straight on the driver on
both databases): what it writes is kept on a clean exit and none of it on an error, a
statement the database refuses raises as through SQLAlchemy, and the connection goes back
clean."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from jobyard.domain.statuses import JobStatus
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import job_events, tables
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _a_job(runtime: Runtime) -> int:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
        return int(
            conn.execute(sa.insert(tables.jobs).returning(tables.jobs.c.id), row).scalar_one()
        )


def _event(job_id: int, reason: str) -> dict[str, object]:
    return job_events.event_row(job_id, None, JobStatus.PENDING, AT, None, reason)


def _reasons(runtime: Runtime, job_id: int) -> list[str]:
    events = tables.job_events
    with runtime.db.read() as conn:
        query = sa.select(events.c.reason).where(events.c.job_id == job_id).order_by(events.c.id)
        return list(conn.execute(query).scalars())


def test_what_it_wrote_is_kept_on_a_clean_exit(runtime: Runtime) -> None:
    job_id = _a_job(runtime)
    with runtime.db.quick_transaction() as conn:
        job_events.insert_events(conn, [_event(job_id, "first"), _event(job_id, "second")])

    assert _reasons(runtime, job_id) == ["first", "second"]


def test_nothing_it_wrote_is_kept_after_an_error(runtime: Runtime) -> None:
    job_id = _a_job(runtime)

    def write_then_fail() -> None:
        with runtime.db.quick_transaction() as conn:
            job_events.insert_events(conn, [_event(job_id, "lost")])
            raise RuntimeError("the launch failed after writing")

    with pytest.raises(RuntimeError):
        write_then_fail()

    assert _reasons(runtime, job_id) == []
    with runtime.db.quick_transaction() as conn:  # the connection went back clean
        job_events.insert_events(conn, [_event(job_id, "next")])
    assert _reasons(runtime, job_id) == ["next"]


def test_a_refused_statement_raises_as_through_sqlalchemy(runtime: Runtime) -> None:
    job_id = _a_job(runtime)

    def write_then_be_refused() -> None:
        with runtime.db.quick_transaction() as conn:
            job_events.insert_events(conn, [_event(job_id, "kept?")])
            job_events.insert_events(conn, [_event(job_id, "refused") | {"to_status": None}])

    with pytest.raises(IntegrityError):
        write_then_be_refused()

    assert _reasons(runtime, job_id) == []
