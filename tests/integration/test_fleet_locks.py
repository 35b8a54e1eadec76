"""A worker frozen inside a transaction (SIGSTOP, a swapped-out host) holds the row locks of
its runs and jobs: on PostgreSQL nobody else's reaper or heartbeat may wait for them, and
every connection's lock and idle limits make the database give them up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError

from jobyard.services import accounts, execution, worker_registry
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import tables
from jobyard.store.db import Database, Timeouts, transient
from jobyard.store.queue import Claim
from tests.integration.job_rows import job_row

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
PROMPT_SECONDS = 1.0  # what "does not wait" means here
T = TypeVar("T")


def _claims(runtime: Runtime, count: int) -> tuple[worker_registry.WorkerIdentity, list[Claim]]:
    """`count` jobs claimed by a worker of their own."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    with runtime.db.transaction() as conn:
        conn.execute(sa.insert(tables.jobs), [row] * count)
    worker = worker_registry.register_worker(runtime, slots=count)
    works = execution.claim_jobs(runtime, worker=worker, limit=count)
    return worker, [work.claim for work in works]


def _lapse(runtime: Runtime, claims: list[Claim]) -> None:
    """As if their worker stopped renewing a while ago."""
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.update(tables.runs)
            .where(tables.runs.c.id.in_([c.run_id for c in claims]))
            .values(lease_expires=utcnow() - timedelta(seconds=60))
        )


@pytest.fixture
def frozen(runtime: Runtime) -> Iterator[Callable[[Claim], None]]:
    """A session that takes a run's rows as a worker ending it does (its run, then its job),
    then stops inside the transaction; rolled back at the end of the test."""
    engine = sa.create_engine(runtime.db.url)
    conn = engine.connect()
    conn.begin()

    def hold(claim: Claim) -> None:
        runs, jobs = tables.runs, tables.jobs
        conn.execute(sa.update(runs).where(runs.c.id == claim.run_id).values(exit_code=0))
        conn.execute(sa.update(jobs).where(jobs.c.id == claim.job.id).values(exit_code=0))

    yield hold
    conn.rollback()
    conn.close()
    engine.dispose()


def _promptly(call: Callable[[], T]) -> tuple[T, float]:
    """`call`'s answer and how long it took; fails if it is still waiting after a while."""
    answers: list[T] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    thread.join(PROMPT_SECONDS * 5)
    assert answers, "it waits for the frozen session's locks"
    return answers[0], time.monotonic() - started


def _run_status(runtime: Runtime, run_id: int) -> str:
    with runtime.db.read() as conn:
        query = sa.select(tables.runs.c.status).where(tables.runs.c.id == run_id)
        return str(conn.execute(query).scalar_one())


def _lease(runtime: Runtime, run_id: int) -> datetime:
    with runtime.db.read() as conn:
        query = sa.select(tables.runs.c.lease_expires).where(tables.runs.c.id == run_id)
        value: datetime = conn.execute(query).scalar_one()
        return value


def test_the_reaper_skips_the_rows_a_frozen_worker_holds(
    runtime: Runtime, frozen: Callable[[Claim], None]
) -> None:
    _, (held, free) = _claims(runtime, 2)
    _lapse(runtime, [held, free])
    frozen(held)

    reaped, took = _promptly(lambda: execution.reap_expired(runtime))

    assert took < PROMPT_SECONDS
    assert reaped == 1
    assert _run_status(runtime, free.run_id) == "lost"
    assert _run_status(runtime, held.run_id) == "running"  # for a later round


def test_the_reaper_ends_the_held_run_once_the_frozen_worker_lets_go(runtime: Runtime) -> None:
    """The database ends a session idle in a transaction past its limit, and with it its
    locks: the next round of the reaper ends the run."""
    _, (held,) = _claims(runtime, 1)
    _lapse(runtime, [held])
    stalling = Database(runtime.db.url, timeouts=Timeouts(idle_in_transaction=0.5))
    try:
        conn = stalling.engine.connect()
        conn.begin()
        conn.execute(sa.update(tables.runs).where(tables.runs.c.id == held.run_id).values(signal=0))
        assert execution.reap_expired(runtime) == 0
        time.sleep(1.5)
        assert execution.reap_expired(runtime) == 1
        assert _run_status(runtime, held.run_id) == "lost"
        with pytest.raises(DBAPIError) as ended:  # its session was ended meanwhile
            conn.execute(sa.text("SELECT 1"))
        assert transient(ended.value)  # a worker's write then is tried again
        conn.close()
    finally:
        stalling.dispose()


def test_the_heartbeat_skips_the_rows_another_session_holds(
    runtime: Runtime, frozen: Callable[[Claim], None]
) -> None:
    worker, (held, free) = _claims(runtime, 2)
    before = _lease(runtime, free.run_id)
    frozen(held)

    lost, took = _promptly(
        lambda: worker_registry.heartbeat(
            runtime, worker=worker, run_ids=[held.run_id, free.run_id], draining=False
        )
    )

    assert took < PROMPT_SECONDS
    assert lost == set()  # a held run is not lost, only left unrenewed this time
    assert _lease(runtime, free.run_id) > before


def test_the_heartbeat_does_not_wait_for_its_worker_row(runtime: Runtime) -> None:
    """A reaper frozen while marking silent workers stopped holds their rows."""
    worker, (claim,) = _claims(runtime, 1)
    before = _lease(runtime, claim.run_id)
    engine = sa.create_engine(runtime.db.url)
    try:
        with engine.begin() as conn:
            workers = tables.workers
            conn.execute(sa.update(workers).where(workers.c.id == worker.id).values(draining=False))
            _, took = _promptly(
                lambda: worker_registry.heartbeat(
                    runtime, worker=worker, run_ids=[claim.run_id], draining=False
                )
            )
            conn.rollback()
    finally:
        engine.dispose()
    assert took < PROMPT_SECONDS
    assert _lease(runtime, claim.run_id) > before


def test_a_statement_waits_for_a_lock_no_longer_than_the_lock_timeout(
    runtime: Runtime, frozen: Callable[[Claim], None]
) -> None:
    _, (held,) = _claims(runtime, 1)
    frozen(held)
    impatient = Database(runtime.db.url, timeouts=Timeouts(lock=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(OperationalError) as refused, impatient.transaction() as conn:
            conn.execute(
                sa.update(tables.runs).where(tables.runs.c.id == held.run_id).values(signal=1)
            )
    finally:
        impatient.dispose()
    assert time.monotonic() - started < PROMPT_SECONDS
    assert transient(refused.value)  # worth trying again: an API answer is 503, not 500
