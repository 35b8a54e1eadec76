"""One watcher per process for every live log follower: a single asyncio task reads where
all followed jobs stand in one statement per tick and wakes the followers of the jobs that
changed, so a thousand followers cost the database what one does.

It starts with the first follower and stops when the last one leaves. Each follower holds a
`Ticket` and waits on it; the watcher never reads output itself (a follower reads what is
new to it, and only when its job's progress says there is some).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from jobyard.domain.following import JobProgress
from jobyard.domain.vocabulary import NO_SUCH_JOB
from jobyard.errors import JobyardError
from jobyard.store import progress
from jobyard.store.db import Database, transient

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # how stale a followed log may be, on top of the worker's own flushes


@dataclass(frozen=True)
class Failure:
    """Why a followed job can be watched no longer: a follower says so and stops."""

    message: str


Seen = JobProgress | Failure


class _Watched:
    """One followed job: its latest progress, a version that grows when it changes, and an
    event set (then replaced) on each change."""

    def __init__(self) -> None:
        self.tickets = 0
        self.version = 0
        self.seen: Seen = Failure(NO_SUCH_JOB)
        self.changed = asyncio.Event()

    def publish(self, seen: Seen) -> None:
        if self.version and seen == self.seen:
            return
        self.seen = seen
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


class Ticket:
    """A follower's hold on a watched job."""

    def __init__(self, watch: LogWatch, job_id: int, watched: _Watched) -> None:
        self.job_id = job_id
        self._watch = watch
        self._watched = watched
        self._version = 0
        self._closed = False

    async def next(self, timeout: float) -> Seen | None:
        """The job's progress once it differs from what this ticket saw last (at once the
        first time after the watcher's first read), or None after `timeout` seconds."""
        watched = self._watched
        if watched.version == self._version:
            try:
                await asyncio.wait_for(watched.changed.wait(), timeout)
            except TimeoutError:
                return None
        self._version = watched.version
        return watched.seen

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._watch._release(self.job_id)


class LogWatch:
    """The process's log watcher. Counters (`loops_started`, `ticks`, `polls`,
    `failed_polls`) tell what it has cost: one poll per tick, whoever follows."""

    def __init__(self, db: Database, *, tick_seconds: float = TICK_SECONDS) -> None:
        self._db = db
        self.tick_seconds = tick_seconds
        self._watched: dict[int, _Watched] = {}
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.loops_started = 0
        self.ticks = 0
        self.polls = 0
        self.failed_polls = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def followed(self) -> int:
        """How many jobs are followed now."""
        return len(self._watched)

    def follow(self, job_id: int) -> Ticket:
        """Watch `job_id` for a follower (call `close` on the ticket when done): the watcher
        starts if it is not running, and reads at once rather than at its next tick."""
        watched = self._watched.get(job_id)
        if watched is None:
            watched = self._watched[job_id] = _Watched()
        watched.tickets += 1
        if not self.running:
            # The event belongs to the loop that waits on it: a new loop gets a new one.
            self._kick = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop())
            self.loops_started += 1
        self._kick.set()
        return Ticket(self, job_id, watched)

    def _release(self, job_id: int) -> None:
        watched = self._watched.get(job_id)
        if watched is None:
            return
        watched.tickets -= 1
        if watched.tickets <= 0:
            del self._watched[job_id]
        if not self._watched:
            self._kick.set()  # the loop sees nobody follows and ends now

    async def _loop(self) -> None:
        while self._watched:
            self._kick.clear()
            await self._poll(sorted(self._watched))
            self.ticks += 1
            if not self._watched:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.tick_seconds)
        self._task = None

    async def _poll(self, job_ids: Sequence[int]) -> None:
        try:
            found = await asyncio.to_thread(self._read, job_ids)
        except Exception as error:
            self.failed_polls += 1
            if transient(error):
                # Followers wait on: the next tick tries again, and nothing is lost.
                logger.debug("log watcher: the database is out of reach: %s", error)
                return
            logger.exception("log watcher: reading followed jobs failed")
            message = str(error) if isinstance(error, JobyardError) else "internal error"
            for job_id in job_ids:
                if job_id in self._watched:
                    self._watched[job_id].publish(Failure(message))
            return
        self.polls += 1
        for job_id in job_ids:
            watched = self._watched.get(job_id)
            if watched is not None:
                watched.publish(found.get(job_id) or Failure(NO_SUCH_JOB))

    def _read(self, job_ids: Sequence[int]) -> dict[int, JobProgress]:
        with self._db.read() as conn:
            return progress.job_progress(conn, job_ids)
