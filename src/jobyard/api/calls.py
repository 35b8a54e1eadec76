"""Running service calls from async routes: blocking work goes to the threadpool, except
key lookups the database answers at once (see `Database.quick_reads`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from jobyard.services.runtime import Runtime

T = TypeVar("T")


async def quick_read(rt: Runtime, work: Callable[[], T]) -> T:
    """`work` is a read of a row or two by key: on SQLite it runs right here, which costs
    less than the thread hand-off; elsewhere in the threadpool."""
    if rt.db.quick_reads:
        return work()
    return await run_in_threadpool(work)
