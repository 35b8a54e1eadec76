"""Runs as they are read (one, a job's latest, lists of them with their jobs), their output
chunks, and the run an external job starts with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard.domain import vocabulary
from jobyard.domain.listing import Listing
from jobyard.domain.models import (
    Job,
    LogChunk,
    Run,
)
from jobyard.domain.statuses import RunStatus
from jobyard.errors import Conflict, NotFound
from jobyard.store import listing, tables
from jobyard.store.jobs import (
    J,
)
from jobyard.store.jobs import get_jobs as get_jobs_by_id
from jobyard.store.key_reads import KeyReads
from jobyard.store.records import RecordReader
from jobyard.store.types import in_ids, json_integer

R = tables.runs
RUN_FIELDS = listing.fields(
    vocabulary.RUN_FIELDS,
    {
        "id": R.c.id,
        "job_id": R.c.job_id,
        "attempt": R.c.attempt,
        "run_key": R.c.run_key,
        "status": R.c.status,
        "worker": R.c.worker,
        "process_id": R.c.process_id,
        "started": R.c.started,
        "spawned": R.c.spawned,
        "finished": R.c.finished,
        "exit_code": R.c.exit_code,
        "running": R.c.status == RunStatus.RUNNING.value,
        "kind": J.c.kind,
        "package_id": func.coalesce(J.c.package_id, 0),
        "user_id": J.c.user_id,
        "step_id": json_integer(J.c.context[("step", "id")].as_string()),
    },
)


run_from_row = RecordReader(Run)
BATCH = 500


def append_output(conn: Connection, run_id: int, chunks: Sequence[tuple[str, int, bytes]]) -> None:
    """Store output chunks as (stream, offset, bytes); offsets count the combined log."""
    if chunks:
        conn.execute(
            insert(tables.run_output),
            [{"run_id": run_id, "stream": s, "offset": o, "data": d} for s, o, d in chunks],
        )


TENANT_RUN_BY_ID = (
    select(R)
    .join(J, J.c.id == R.c.job_id)
    .where(R.c.id == bindparam("run_id"), J.c.tenant_id == bindparam("tenant_id"))
)


def get_run(conn: Connection | KeyReads, run_id: int, *, tenant_id: int) -> Run:
    row = conn.execute(TENANT_RUN_BY_ID, {"run_id": run_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(vocabulary.NO_SUCH_RUN)
    return run_from_row(row)


def latest_run(conn: Connection, job_id: int) -> Run | None:
    query = select(R).where(R.c.job_id == job_id).order_by(R.c.attempt.desc()).limit(1)
    row = conn.execute(query).first()
    return None if row is None else run_from_row(row)


def list_runs(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[Run], int]:
    query = select(R).join(J, J.c.id == R.c.job_id).where(J.c.tenant_id == tenant_id)
    query = listing.apply(query, request, RUN_FIELDS, pg=pg, tiebreak=R.c.id)
    rows, total = listing.fetch_page(conn, query, request.page)
    return [run_from_row(r) for r in rows], total


def list_runs_with_jobs(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[tuple[Run, Job]], int]:
    """Runs and the jobs they belong to, for views that show both."""
    runs_found, total = list_runs(conn, request, tenant_id=tenant_id, pg=pg)
    jobs = {j.id: j for j in get_jobs_by_id(conn, sorted({r.job_id for r in runs_found}))}
    return [(r, jobs[r.job_id]) for r in runs_found], total


def read_output(
    conn: Connection, run_id: int, *, offset: int, limit_bytes: int, stream: str | None
) -> list[LogChunk]:
    """Chunks that hold bytes at or after `offset`, in order, up to about `limit_bytes`.

    A chunk stored twice (a worker wrote it again after its commit went unacknowledged) is
    read once: chunks never overlap otherwise, so one that starts before the end of the
    chunk before it is a repeat."""
    out = tables.run_output
    query = (
        select(out.c.offset, out.c.stream, out.c.data)
        .where(out.c.run_id == run_id, out.c.offset + func.length(out.c.data) > offset)
        .order_by(out.c.offset, out.c.id)
    )
    if stream is not None:
        query = query.where(out.c.stream == stream)
    chunks: list[LogChunk] = []
    size = 0
    covered = -1  # where the last chunk read ends
    for row in conn.execute(query):
        if row.offset < covered:
            continue
        covered = row.offset + len(row.data)
        chunks.append(LogChunk(offset=row.offset, stream=row.stream, data=bytes(row.data)))
        size += len(row.data)
        if size >= limit_bytes:
            break
    return chunks


_NEWEST_ATTEMPTS = (
    select(R.c.job_id, func.max(R.c.attempt).label("attempt"))
    .where(in_ids(R.c.job_id, "ids"))
    .group_by(R.c.job_id)
    .subquery()
)
_LATEST_RUNS = select(R).join(
    _NEWEST_ATTEMPTS,
    (R.c.job_id == _NEWEST_ATTEMPTS.c.job_id) & (R.c.attempt == _NEWEST_ATTEMPTS.c.attempt),
)


def latest_runs(conn: Connection, job_ids: Sequence[int]) -> dict[int, Run]:
    """Each job's latest run (as `latest_run`), by job id; jobs without a run are left out."""
    found: dict[int, Run] = {}
    for start in range(0, len(job_ids), BATCH):
        rows = conn.execute(_LATEST_RUNS, {"ids": list(job_ids[start : start + BATCH])})
        found.update((row.job_id, run_from_row(row)) for row in rows)
    return found


_OUT = tables.run_output
_CHUNK_SIZES = (
    select(_OUT.c.run_id, _OUT.c.id, _OUT.c.offset, func.length(_OUT.c.data).label("size"))
    .where(
        in_ids(_OUT.c.run_id, "ids"),
        _OUT.c.stream == bindparam("stream"),
        _OUT.c.offset + func.length(_OUT.c.data) > 0,
    )
    .order_by(_OUT.c.run_id, _OUT.c.offset, _OUT.c.id)
)
_CHUNK_DATA = select(_OUT.c.id, _OUT.c.data).where(in_ids(_OUT.c.id, "ids"))


def output_heads(
    conn: Connection, run_ids: Sequence[int], *, stream: str, limit_bytes: int
) -> dict[int, bytes]:
    """The start of one stream of each run, by run id: the chunks `read_output` reads from
    offset 0 (whole chunks, repeats skipped, until `limit_bytes` are reached), cut at
    `limit_bytes`. Two batched queries: the chunks' sizes pick the chunks, then their data."""
    picked: dict[int, list[int]] = {run_id: [] for run_id in run_ids}
    ids = list(picked)
    for start in range(0, len(ids), BATCH):
        sizes = conn.execute(_CHUNK_SIZES, {"ids": ids[start : start + BATCH], "stream": stream})
        _pick_chunks(sizes, picked, limit_bytes)
    wanted = [chunk for chunks in picked.values() for chunk in chunks]
    data: dict[int, bytes] = {}
    for start in range(0, len(wanted), BATCH):
        rows = conn.execute(_CHUNK_DATA, {"ids": wanted[start : start + BATCH]})
        data.update((row.id, bytes(row.data)) for row in rows)
    return {
        run_id: b"".join(data[chunk] for chunk in chunks)[:limit_bytes]
        for run_id, chunks in picked.items()
    }


def _pick_chunks(rows: Iterable[Any], picked: dict[int, list[int]], limit: int) -> None:
    """`read_output`'s walk over one run's chunks, for many runs in (run, offset) order."""
    run_id, covered, size = None, -1, 0
    for row in rows:
        if row.run_id != run_id:
            run_id, covered, size = row.run_id, -1, 0
        if size >= limit or row.offset < covered:
            continue
        covered = row.offset + row.size
        picked[row.run_id].append(row.id)
        size += row.size


def run_for_attempt(conn: Connection, job_id: int, attempt: int) -> Run | None:
    row = conn.execute(select(R).where(R.c.job_id == job_id, R.c.attempt == attempt)).first()
    return None if row is None else run_from_row(row)


def start_external_run(conn: Connection, job: Job, *, worker: str, at: datetime) -> int:
    """A run for an attempt that nothing here executes (an external job)."""
    attempt = job.attempts + 1
    try:
        with conn.begin_nested():
            if job.interface_names:
                conn.execute(
                    insert(tables.interface_locks),
                    [{"name": n, "job_id": job.id} for n in job.interface_names],
                )
    except IntegrityError:
        names = ", ".join(job.interface_names)
        raise Conflict(
            f"an interface of job {job.id} ({names}) is in use by a running job"
        ) from None
    run_id = int(
        conn.execute(
            insert(R)
            .values(
                job_id=job.id,
                attempt=attempt,
                run_key=int(at.timestamp()),
                status=RunStatus.RUNNING.value,
                worker=worker,
                started=at,
            )
            .returning(R.c.id)
        ).scalar_one()
    )
    conn.execute(update(J).where(J.c.id == job.id).values(attempts=attempt, current_run_id=run_id))
    return run_id


def stored_end(conn: Connection, run_id: int) -> int:
    """Where a run's stored output ends: its size, unless it was cut at the output cap."""
    out = tables.run_output
    query = select(func.max(out.c.offset + func.length(out.c.data))).where(out.c.run_id == run_id)
    return int(conn.execute(query).scalar_one() or 0)


def stream_extents(
    conn: Connection, run_id: int, *, streams: Sequence[str]
) -> dict[str, list[tuple[int, int]]]:
    """Each stream's chunks as (merged offset, size), in stored order, repeats included:
    sizes only, to find where a stream's own offset lies in the merged log."""
    query = (
        select(_OUT.c.stream, _OUT.c.offset, func.length(_OUT.c.data).label("size"))
        .where(_OUT.c.run_id == run_id, _OUT.c.stream.in_(list(streams)))
        .order_by(_OUT.c.offset, _OUT.c.id)
    )
    found: dict[str, list[tuple[int, int]]] = {stream: [] for stream in streams}
    for row in conn.execute(query):
        found[row.stream].append((row.offset, row.size))
    return found


def read_streams(
    conn: Connection, run_id: int, *, after: Mapping[str, int], limit_bytes: int
) -> tuple[list[LogChunk], bool]:
    """The chunks of the streams in `after` that reach past the merged offset given for
    each, in merged order, whole, until about `limit_bytes` are read; and whether that
    limit cut the read short (more may follow at once)."""
    if not after:
        return [], False
    reach = [
        (_OUT.c.stream == stream) & (_OUT.c.offset + func.length(_OUT.c.data) > offset)
        for stream, offset in after.items()
    ]
    query = (
        select(_OUT.c.offset, _OUT.c.stream, _OUT.c.data)
        .where(_OUT.c.run_id == run_id, or_(*reach))
        .order_by(_OUT.c.offset, _OUT.c.id)
    )
    chunks: list[LogChunk] = []
    size = 0
    for row in conn.execute(query):
        if size >= limit_bytes:
            return chunks, True
        chunks.append(LogChunk(offset=row.offset, stream=row.stream, data=bytes(row.data)))
        size += len(row.data)
    return chunks, False
