"""`quick_write` runs a short write on the caller's thread only when no one else is writing
(another thread or another process), and never waits for the writer's turn there."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time

import pytest

from jobyard.api.calls import quick_write
from jobyard.services.runtime import Runtime


def _where_it_ran(runtime: Runtime) -> int:
    async def call() -> int:
        return await quick_write(runtime, threading.get_ident)

    return asyncio.run(call())


def test_a_free_turn_on_sqlite_runs_here_and_elsewhere_in_the_threadpool(
    runtime: Runtime,
) -> None:
    here = threading.get_ident()
    assert (_where_it_ran(runtime) == here) is runtime.db.is_sqlite


def test_a_busy_turn_sends_the_write_to_the_threadpool_without_waiting(runtime: Runtime) -> None:
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with runtime.db.transaction():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    began = time.monotonic()
    with runtime.db.writer_turn_if_free() as free:
        assert not free
    assert time.monotonic() - began < 0.5
    threading.Timer(0.2, release.set).start()
    assert _where_it_ran(runtime) != threading.get_ident()
    thread.join()


def test_another_process_holding_the_writer_lock_is_not_waited_for(runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL has no writer lock")
    database = runtime.db.engine.url.database
    other = os.open(f"{database}.writer-lock", os.O_RDWR)  # another open file: another lock
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with runtime.db.writer_turn_if_free() as free:
            assert not free
    finally:
        os.close(other)
    with runtime.db.writer_turn_if_free() as free:
        assert free
