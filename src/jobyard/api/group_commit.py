"""Single launches of concurrent requests written together (a group commit).

A launch waits for its turn at the database; while one batch is being written, the launches
that arrive meanwhile queue, and the next batch takes them all in one transaction: one
BEGIN, a few statements and one COMMIT for many jobs, and the workers claim them together
too. A lone launch is written at once, as before. Every launch is still answered only once
its job is stored, and each is judged alone (`services.jobs.launch_each`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from jobyard.api.calls import quick_write
from jobyard.domain.models import Job
from jobyard.domain.permissions import Principal
from jobyard.services import jobs
from jobyard.services.runtime import Runtime


@dataclass(frozen=True)
class _Waiting:
    actor: Principal
    request: jobs.LaunchRequest
    answer: asyncio.Future[Job]


class LaunchQueue:
    """Launches waiting for the next batch, written by one task at a time."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._alone = False  # a lone launch is being written

    async def launch(self, actor: Principal, request: jobs.LaunchRequest) -> Job:
        """The job, once stored; a refused launch raises its own error."""
        if self._writer is None and not self._alone:
            return await self._launch_alone(actor, request)
        answer: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(actor, request, answer))
        return await answer

    async def _launch_alone(self, actor: Principal, request: jobs.LaunchRequest) -> Job:
        """Nothing else is being written: this launch goes at once, with no batch to make
        (a future and a task cost a lone launch a tenth more); those that arrive meanwhile
        wait for the next batch."""
        self._alone = True
        try:
            launches = [(actor, request)]
            [result] = await quick_write(self._rt, lambda: jobs.launch_each(self._rt, launches))
        finally:
            self._alone = False
            self._write_waiting()
        if isinstance(result, Job):
            return result
        raise result

    def _write_waiting(self) -> None:
        if self._waiting and self._writer is None:
            # A task of its own: a request whose client goes away must not strand the batch.
            self._writer = asyncio.create_task(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Waiting]) -> None:
        launches = [(waiting.actor, waiting.request) for waiting in batch]
        try:
            results = await quick_write(self._rt, lambda: jobs.launch_each(self._rt, launches))
        except Exception as error:  # the database's: nothing of the batch was written
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(error)
            return
        for waiting, result in zip(batch, results, strict=True):
            if waiting.answer.done():  # its request was cancelled meanwhile
                continue
            if isinstance(result, Job):
                waiting.answer.set_result(result)
            else:
                waiting.answer.set_exception(result)


def launch_queue_of(request: Request) -> LaunchQueue:
    """The app's queue of single launches (made with its runtime, at start-up)."""
    queue: LaunchQueue = request.app.state.launches
    return queue
