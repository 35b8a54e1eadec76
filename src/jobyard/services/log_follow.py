"""Following a job's log live: what to send, in order, until the job reaches a final status.

Every attempt from the first (or the one asked for) is followed in turn: an `AttemptStarted`
when one begins, its output as `Output` pieces, decoded as UTF-8 per stream and
incrementally (a character split across two writes arrives whole), and one `Ended` with the
job's final status once the job has one; a run's end is not the job's. The process's log
watcher (`log_watch`) says when the job changed; output is read only when there is new
output for this follower.

Each event but `Problem` carries an id, `<attempt>:<stdout offset>:<stderr offset>`: the
attempt, and how many bytes of each of its streams have been given (a byte that ends an
incomplete character counts once the character is given). A follower that comes back with
it as `Last-Event-ID` gets exactly what comes after, for each stream on its own and for
both merged (docs/api.md#following-a-log-live).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from jobyard.domain.following import (
    STREAMS,
    JobProgress,
    RunProgress,
    StreamCursor,
    check_stream,
    cursor_at,
    cursor_at_merged,
)
from jobyard.domain.models import LogChunk
from jobyard.domain.numbers import ascii_int
from jobyard.domain.permissions import Principal, Scope, require_on_job
from jobyard.domain.statuses import JobStatus
from jobyard.errors import JobyardError, ValidationFailed
from jobyard.services.log_watch import Failure
from jobyard.services.runtime import Runtime, unavailable
from jobyard.store import jobs as job_store
from jobyard.store import runs

logger = logging.getLogger(__name__)

READ_BYTES = 256 * 1024  # at most this much output is read (and sent) at a time
QUIET_SECONDS = 1.0  # how long a follower waits before it yields None (nothing new)
LAST_EVENT_ID = "Last-Event-ID"


@dataclass(frozen=True)
class Position:
    """Where a follower resumes: an attempt and each stream's own offset in it."""

    attempt: int
    stdout: int = 0
    stderr: int = 0

    def event_id(self) -> str:
        return f"{self.attempt}:{self.stdout}:{self.stderr}"

    def offset(self, stream: str) -> int:
        return self.stdout if stream == "stdout" else self.stderr


def parse_event_id(text: str) -> Position | int:
    """A `Last-Event-ID`: `<attempt>:<stdout>:<stderr>` as events carry it, or (as ids
    were before attempts had events) one offset, read as the `offset` parameter is."""
    parts = text.split(":")
    numbers = [ascii_int(part) for part in parts]
    if len(parts) not in (1, 3) or None in numbers:
        raise ValidationFailed(
            f"invalid {LAST_EVENT_ID} {text[:40]!r}: expected <attempt>:<stdout>:<stderr> "
            "(integers from 0 to 9223372036854775807)",
            field=LAST_EVENT_ID,
        )
    found = [n for n in numbers if n is not None]
    return found[0] if len(found) == 1 else Position(*found)


@dataclass(frozen=True)
class AttemptStarted:
    id: str
    attempt: int
    run_id: int


@dataclass(frozen=True)
class Output:
    id: str
    attempt: int
    stream: str
    text: str


@dataclass(frozen=True)
class Ended:
    id: str
    status: JobStatus
    exit_code: int | None
    attempt: int


@dataclass(frozen=True)
class Problem:
    message: str


Event = AttemptStarted | Output | Ended | Problem


async def follow_log(
    rt: Runtime,
    *,
    actor: Principal,
    job_id: int,
    stream: str | None = None,
    attempt: int | None = None,
    offset: int = 0,
    resume: Position | None = None,
    quiet_seconds: float = QUIET_SECONDS,
) -> AsyncGenerator[Event | None, None]:
    """The events of a job's log from `attempt` (default: the first) at `offset` (the
    stream's own offset, or the merged log's when both are followed), or from `resume`;
    None when nothing happened for `quiet_seconds` (the caller may send a keep-alive). It
    ends after `Ended` or `Problem`. The caller, its parameters and the job are checked
    here, before the first event: a refusal is an error answer, not an event."""
    await asyncio.to_thread(_check, rt, actor, job_id, stream)
    return _events(rt, job_id, stream, attempt, offset, resume, quiet_seconds)


async def _events(
    rt: Runtime,
    job_id: int,
    stream: str | None,
    attempt: int | None,
    offset: int,
    resume: Position | None,
    quiet_seconds: float,
) -> AsyncGenerator[Event | None, None]:
    follower = _Follower(rt, job_id, (stream,) if stream else STREAMS, attempt, offset, resume)
    ticket = rt.log_watch.follow(job_id)
    try:
        while True:
            seen = await ticket.next(quiet_seconds)
            if seen is None:
                yield None
                continue
            if isinstance(seen, Failure):
                yield Problem(seen.message)
                return
            try:
                async for event in follower.catch_up(seen):
                    yield event
            except JobyardError as error:
                yield Problem(str(error))
                return
            except Exception as error:
                found = unavailable(error)
                if found is None:
                    logger.exception("following job %s failed", job_id)
                yield Problem(str(found) if found else "internal error")
                return
            if follower.ended:
                return
    finally:
        ticket.close()


def _check(rt: Runtime, actor: Principal, job_id: int, stream: str | None) -> None:
    check_stream(stream)
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read_key() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)


class _Follower:
    """One follower's place: the attempt it is in, a cursor per stream, the attempts done."""

    def __init__(
        self,
        rt: Runtime,
        job_id: int,
        streams: Sequence[str],
        attempt: int | None,
        offset: int,
        resume: Position | None,
    ) -> None:
        self.rt = rt
        self.job_id = job_id
        self.streams = tuple(streams)
        self.first = resume.attempt if resume else (attempt or 1)
        self.offset = offset
        self.resume = resume
        self.attempt = 0  # the attempt being followed (0: none yet)
        self.done = 0  # the last attempt followed to its end
        self.cursors: dict[str, StreamCursor] = {}
        self.ended = False

    async def catch_up(self, job: JobProgress) -> AsyncIterator[Event]:
        """Everything new in `job` for this follower, and `Ended` once it is all given."""
        final = job.status.terminal
        for run in job.runs:
            if run.attempt < self.first or run.attempt <= self.done:
                continue
            if run.attempt != self.attempt:
                started = await self._open(run)
                if started is not None:
                    yield started
            async for event in self._read(run):
                yield event
            if not (run.finished or final) or self._behind(run):
                return  # this attempt goes on: later ones wait for it
            for stream in self.streams:
                cursor = self.cursors[stream]
                text = cursor.decode(b"", final=True)
                if text:
                    yield Output(self._id(), run.attempt, stream, text)
            self.done = run.attempt
        if final:
            self.ended = True
            yield Ended(self._id(), job.status, job.exit_code, job.attempt)

    def _id(self) -> str:
        sent = {stream: cursor.sent for stream, cursor in self.cursors.items()}
        return Position(self.attempt, sent.get("stdout", 0), sent.get("stderr", 0)).event_id()

    def _behind(self, run: RunProgress) -> bool:
        return any(run.end(s) > self.cursors[s].merged for s in self.streams)

    async def _open(self, run: RunProgress) -> AttemptStarted | None:
        """Start following `run`: at the offsets asked for if it is the first attempt
        followed; an attempt a resume names was announced before, so it is not again."""
        self.attempt = run.attempt
        self.cursors = {stream: StreamCursor(stream) for stream in self.streams}
        resumed = self.resume is not None and run.attempt == self.resume.attempt
        if run.attempt == self.first and (resumed or self.offset):
            extents = await asyncio.to_thread(self._extents, run.run_id)
            for stream in self.streams:
                if self.resume is not None:
                    at = cursor_at(stream, extents[stream], self.resume.offset(stream))
                elif len(self.streams) == 1:
                    at = cursor_at(stream, extents[stream], self.offset)
                else:
                    at = cursor_at_merged(stream, extents[stream], self.offset)
                self.cursors[stream] = at
        if resumed:
            return None
        return AttemptStarted(self._id(), run.attempt, run.run_id)

    async def _read(self, run: RunProgress) -> AsyncIterator[Output]:
        """The run's output past the cursors, up to where `run` says it ends, in the merged
        log's order: one event per stretch of one stream."""
        while self._behind(run):
            after = {s: self.cursors[s].merged for s in self.streams}
            chunks, _more = await asyncio.to_thread(self._chunks, run.run_id, after)
            if not chunks:
                return  # gone (the job was deleted): the watcher says so next
            stretch: tuple[str, bytearray] | None = None
            for chunk in chunks:
                if stretch is not None and stretch[0] != chunk.stream:
                    # Given before the next stream's bytes are taken: an event's id counts
                    # the other stream's bytes given before it, and no more.
                    event = self._given(run, *stretch)
                    if event is not None:
                        yield event
                    stretch = None
                data = self.cursors[chunk.stream].take(chunk)
                if stretch is None:
                    stretch = (chunk.stream, bytearray())
                stretch[1].extend(data)
            if stretch is not None:
                event = self._given(run, *stretch)
                if event is not None:
                    yield event

    def _given(self, run: RunProgress, stream: str, data: bytearray) -> Output | None:
        text = self.cursors[stream].decode(bytes(data))
        return Output(self._id(), run.attempt, stream, text) if text else None

    def _extents(self, run_id: int) -> dict[str, list[tuple[int, int]]]:
        with self.rt.db.read() as conn:
            return runs.stream_extents(conn, run_id, streams=self.streams)

    def _chunks(self, run_id: int, after: dict[str, int]) -> tuple[list[LogChunk], bool]:
        with self.rt.db.read() as conn:
            return runs.read_streams(conn, run_id, after=after, limit_bytes=READ_BYTES)
