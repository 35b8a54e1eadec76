"""Running service calls from async routes: blocking work goes to the threadpool, except
work the database answers at once: key lookups on SQLite or on PostgreSQL on this host (see
`Database.quick_reads`), and short writes on SQLite while no one else is writing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from jobyard.services.runtime import Runtime

T = TypeVar("T")


async def quick_read(rt: Runtime, work: Callable[[], T]) -> T:
    """`work` is a read of a row or two by key: where the database answers it at once it
    runs right here, which costs less than the thread hand-off; elsewhere in the threadpool."""
    if rt.db.quick_reads:
        return work()
    return await run_in_threadpool(work)


async def quick_write(rt: Runtime, work: Callable[[], T]) -> T:
    """`work` is a short write transaction. On SQLite, when no one else is writing, it runs
    right here: holding the writer's turn it cannot wait for a lock, and the hand-off to a
    thread cost more than the launch itself (it halved the launches per second). When the
    turn is taken, or on PostgreSQL, it runs in the threadpool."""
    with rt.db.writer_turn_if_free() as free:
        if free:
            return work()
    return await run_in_threadpool(work)


def runtime_of(request: Request) -> Runtime:
    """The runtime the app was made with: every route's way to the services."""
    runtime: Runtime = request.app.state.rt
    return runtime
