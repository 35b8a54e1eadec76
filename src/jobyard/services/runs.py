"""Read-only views of runs and of their output."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from jobyard.domain.following import check_stream, cursor_at
from jobyard.domain.listing import Listing
from jobyard.domain.models import Run
from jobyard.domain.permissions import Principal, Scope, require, require_on_job
from jobyard.errors import NotFound, ValidationFailed
from jobyard.services.runtime import Runtime
from jobyard.store import jobs as job_store
from jobyard.store import runs

LOG_PAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LogSlice:
    """Output of one run from `offset`; `next_offset` is where the next read starts."""

    job_id: int
    run: Run | None
    offset: int
    next_offset: int
    content: bytes
    complete: bool


def list_runs(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Run], int]:
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        return runs.list_runs(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)


def get_run(rt: Runtime, *, actor: Principal, run_id: int) -> Run:
    require(actor, Scope.JOBS_READ)
    with rt.db.read_key() as conn:
        return runs.get_run(conn, run_id, tenant_id=actor.tenant_id)


def read_log(
    rt: Runtime,
    *,
    actor: Principal,
    job_id: int,
    offset: int = 0,
    attempt: int | None = None,
    stream: str | None = None,
    limit_bytes: int = LOG_PAGE_BYTES,
) -> LogSlice:
    """A slice of a job's output (its latest run unless an attempt is named): of the merged
    log, offsets counting both streams, or of one `stream`, offsets counting its bytes."""
    if offset < 0:
        raise ValidationFailed("offset must not be negative", field="offset")
    check_stream(stream)
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        run = _pick_run(conn, job_id, attempt)
        if run is None:
            return LogSlice(job_id, None, offset, offset, b"", job.status.terminal)
        if stream is not None:
            return _read_stream(conn, job_id, run, stream, offset, limit_bytes)
        return _read_merged(conn, job_id, run, offset, limit_bytes)


def _read_merged(
    conn: Connection, job_id: int, run: Run, offset: int, limit_bytes: int
) -> LogSlice:
    """Both streams, in the order they were written, from the merged log's byte `offset`."""
    chunks = runs.read_output(conn, run.id, offset=offset, limit_bytes=limit_bytes, stream=None)
    content = b"".join(c.data[max(0, offset - c.offset) :] for c in chunks)
    next_offset = chunks[-1].offset + len(chunks[-1].data) if chunks else offset
    complete = run.finished is not None and len(content) < limit_bytes
    return LogSlice(job_id, run, offset, max(next_offset, offset), content, complete)


def read_log_tail(
    rt: Runtime, *, actor: Principal, job_id: int, attempt: int | None, tail_bytes: int
) -> LogSlice:
    """The last `tail_bytes` of an attempt's stored output (the latest attempt's unless one
    is named): where a page showing a long log starts."""
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        run = _pick_run(conn, job_id, attempt)
        if run is None:
            return LogSlice(job_id, None, 0, 0, b"", job.status.terminal)
        start = max(0, runs.stored_end(conn, run.id) - tail_bytes)
        return _read_merged(conn, job_id, run, start, LOG_PAGE_BYTES)


def read_log_range(
    rt: Runtime, *, actor: Principal, job_id: int, attempt: int | None, start: int, end: int
) -> LogSlice:
    """Exactly the bytes `start` to `end` of an attempt's stored output (fewer only where it
    ends sooner): an earlier page of a log a reader is going back through."""
    if end < start:
        raise ValidationFailed("the end of a log range must not come before its start")
    pieces: list[bytes] = []
    offset = start
    while True:
        piece = read_log(
            rt,
            actor=actor,
            job_id=job_id,
            offset=offset,
            attempt=attempt,
            limit_bytes=max(1, end - offset),
        )
        taken = piece.content[: end - offset]
        pieces.append(taken)
        offset += len(taken)
        if offset >= end or not taken:
            break
    content = b"".join(pieces)
    return LogSlice(job_id, piece.run, start, start + len(content), content, piece.complete)


def _read_stream(
    conn: Connection, job_id: int, run: Run, stream: str, offset: int, limit_bytes: int
) -> LogSlice:
    """One stream alone: `offset` and `next_offset` count that stream's own bytes (stored
    chunks are placed in the merged log, so its chunks' sizes tell where `offset` lies)."""
    extents = runs.stream_extents(conn, run.id, streams=[stream])[stream]
    cursor = cursor_at(stream, extents, offset)
    chunks, more = runs.read_streams(
        conn, run.id, after={stream: cursor.merged}, limit_bytes=limit_bytes
    )
    content = b"".join(cursor.take(chunk) for chunk in chunks)
    complete = run.finished is not None and not more
    return LogSlice(job_id, run, offset, max(cursor.own, offset), content, complete)


def _pick_run(conn: Connection, job_id: int, attempt: int | None) -> Run | None:
    if attempt is None:
        return runs.latest_run(conn, job_id)
    found = runs.run_for_attempt(conn, job_id, attempt)
    if found is None:
        raise NotFound(f"job {job_id} has no attempt {attempt}")
    return found
