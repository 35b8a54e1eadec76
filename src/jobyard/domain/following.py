"""Following a job's output: where a job and its runs stand, and a reader's place in one
stream of a run (its bytes, how far it has read, what it has decoded).

Runs store their output as chunks whose offsets count the merged log (stdout and stderr
together). A stream's own offset counts that stream's bytes alone; a `StreamCursor` keeps
both, so a reader resumes a stream exactly by its own offset.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobyard.domain.models import LogChunk
from jobyard.domain.statuses import JobStatus
from jobyard.errors import ValidationFailed

STREAMS = ("stdout", "stderr")


def check_stream(stream: str | None) -> None:
    """One stream asked for by name (None: both, merged)."""
    if stream is not None and stream not in STREAMS:
        raise ValidationFailed(f"invalid stream {stream!r}: expected stdout or stderr")


@dataclass(frozen=True)
class RunProgress:
    """One attempt as a watcher sees it: whether it has ended, and where each stream's
    stored output ends (in merged-log offsets; 0 before any)."""

    run_id: int
    attempt: int
    finished: bool
    stdout_end: int = 0
    stderr_end: int = 0

    def end(self, stream: str) -> int:
        return self.stdout_end if stream == "stdout" else self.stderr_end


@dataclass(frozen=True)
class JobProgress:
    """A job as a watcher sees it, its runs in attempt order. A terminal job's runs and
    their output are final: a run's end is stored with the last of its output."""

    job_id: int
    status: JobStatus
    exit_code: int | None
    runs: tuple[RunProgress, ...] = ()

    @property
    def attempt(self) -> int:
        return self.runs[-1].attempt if self.runs else 0


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


@dataclass
class StreamCursor:
    """A reader's place in one stream of one run.

    `merged` is the merged-log offset reading goes on from, `own` how many of the stream's
    bytes lie before it, `floor` the stream offset output starts at (bytes below it are
    read but not given: a resume past what was stored when it began). The decoder keeps
    an incomplete UTF-8 sequence until its next bytes come, so `sent` is the stream offset
    up to which text has been given, the offset a resume starts from."""

    stream: str
    merged: int = 0
    own: int = 0
    floor: int = 0
    decoder: codecs.IncrementalDecoder = field(default_factory=_decoder)

    def take(self, chunk: LogChunk) -> bytes:
        """The bytes of `chunk` that lie past this cursor, which moves past them. A chunk
        stored again (its first write's commit went unacknowledged, perhaps with more
        bytes since) overlaps what was read: only its new tail counts."""
        end = chunk.offset + len(chunk.data)
        if chunk.stream != self.stream or end <= self.merged:
            return b""
        data = chunk.data[max(0, self.merged - chunk.offset) :]
        self.merged = end
        start = self.own
        self.own += len(data)
        return data[max(0, self.floor - start) :]

    def decode(self, data: bytes, *, final: bool = False) -> str:
        return self.decoder.decode(data, final)

    @property
    def sent(self) -> int:
        held: bytes = self.decoder.getstate()[0]
        return max(self.floor, self.own - len(held))


def cursor_at(stream: str, extents: Iterable[tuple[int, int]], offset: int) -> StreamCursor:
    """A cursor at the stream's own `offset`, from its chunks' (merged offset, size) in
    stored order (repeats included). Past the stored end it waits there, with a floor."""
    covered = own = 0
    for start, size in extents:
        end = start + size
        if end <= covered:
            continue
        begin = max(start, covered)
        if own + (end - begin) > offset:
            return StreamCursor(stream, merged=begin + (offset - own), own=offset, floor=offset)
        own += end - begin
        covered = end
    return StreamCursor(stream, merged=covered, own=own, floor=offset)


def cursor_at_merged(stream: str, extents: Iterable[tuple[int, int]], offset: int) -> StreamCursor:
    """A cursor at the merged log's `offset`: the stream's bytes before it are behind it."""
    covered = own = 0
    for start, size in extents:
        end = min(start + size, offset)
        begin = max(start, covered)
        if end > begin:
            own += end - begin
            covered = end
    return StreamCursor(stream, merged=offset, own=own, floor=own)
