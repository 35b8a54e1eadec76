"""While claims come close together, a run's end with nothing left to claim waits a moment
for the next claim and is stored in that claim's turn (the runs of one turn share its time:
the waiting run's `finished` is the next run's `started`); after no claim for a while, and in
a draining pool, an end is stored at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from jobyard.worker.engine import IDLE_WAIT_SECONDS, Engine
from tests.integration.job_rows import job_row

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LONG_WAIT = 60.0  # far longer than any test here: only a claim or a drain stores the end


def _launch(runtime: Runtime) -> int:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    with runtime.db.transaction() as conn:
        job_id = int(
            conn.execute(sa.insert(tables.jobs).returning(tables.jobs.c.id), row).scalar_one()
        )
    runtime.wakeup.notify()
    return job_id


def _run_of(runtime: Runtime, job_id: int) -> sa.Row[tuple[str, datetime, datetime | None]] | None:
    runs = tables.runs
    query = sa.select(runs.c.status, runs.c.started, runs.c.finished).where(runs.c.job_id == job_id)
    with runtime.db.read() as conn:
        return conn.execute(query).first()


def _finished(runtime: Runtime, job_id: int) -> bool:
    run = _run_of(runtime, job_id)
    return run is not None and run.finished is not None


def _until(what: str, done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


def _processes_ended(pool: Engine) -> bool:
    """Whether the pool holds runs, and the process of each has ended."""
    held = pool.held_runs().values()
    return bool(held) and all(running.process_ended for running in held)


def _process_ended(pool: Engine, runtime: Runtime, job_id: int) -> bool:
    """Whether the job's process ended (its end stored or not)."""
    return _processes_ended(pool) or _finished(runtime, job_id)


def _launch_and_finish(runtime: Runtime) -> int:
    """A job launched and run to its end (its claim starts the count between claims)."""
    job_id = _launch(runtime)
    _until("the job's end", lambda: _finished(runtime, job_id))
    return job_id


def test_an_end_is_stored_with_the_next_claim(runtime: Runtime) -> None:
    pool = Engine(runtime, slots=2, end_wait=LONG_WAIT)
    pool.start()
    try:
        _launch_and_finish(runtime)
        first = _launch(runtime)  # claims now come less than LONG_WAIT apart
        _until("the job's process to end", lambda: _processes_ended(pool))
        time.sleep(0.2)  # long past an end that did not wait
        waiting = _run_of(runtime, first)
        assert waiting is not None
        assert waiting.status == "running"

        second = _launch(runtime)
        _until("the waiting run's end", lambda: _finished(runtime, first))
        ended, started = _run_of(runtime, first), _run_of(runtime, second)
        assert ended is not None
        assert started is not None
        assert ended.status == "completed"
        assert ended.finished == started.started  # one turn: the end rode on the claim
    finally:
        pool.stop()


def test_after_no_claim_for_a_while_an_end_is_stored_at_once(runtime: Runtime) -> None:
    """The pool's first claim comes after none: a wait would only make its end later."""
    pool = Engine(runtime, slots=2, end_wait=LONG_WAIT)
    pool.start()
    try:
        run = _run_of(runtime, _launch_and_finish(runtime))
        assert run is not None
        assert run.finished is not None
        # Well within the idle pool's next look at the queue (IDLE_WAIT_SECONDS), whose
        # turn would carry a waiting end.
        assert run.finished - run.started < timedelta(seconds=IDLE_WAIT_SECONDS * 0.6)
    finally:
        pool.stop()


def test_a_draining_pool_stores_its_ends_at_once(runtime: Runtime) -> None:
    pool = Engine(runtime, slots=2, end_wait=LONG_WAIT)
    pool.start()
    _launch_and_finish(runtime)
    job_id = _launch(runtime)
    _until("the job's process to end", lambda: _process_ended(pool, runtime, job_id))
    began = time.monotonic()
    pool.stop()
    assert time.monotonic() - began < LONG_WAIT / 4
    run = _run_of(runtime, job_id)
    assert run is not None
    assert run.status == "completed"


def test_an_end_is_stored_after_its_wait_without_a_claim(runtime: Runtime) -> None:
    pool = Engine(runtime, slots=2, end_wait=0.3)
    pool.start()
    try:
        _launch_and_finish(runtime)
        job_id = _launch(runtime)
        _until("the job's process to end", lambda: _process_ended(pool, runtime, job_id))
        _until("its end", lambda: _finished(runtime, job_id))
        run = _run_of(runtime, job_id)
        assert run is not None
        assert run.status == "completed"
    finally:
        pool.stop()
