"""Procrastinate: PostgreSQL (LISTEN/NOTIFY), one worker with `--concurrency slots`. The job
runs `run_true` in a thread and writes what it recorded to `bench_results`, since
Procrastinate keeps no return values. Batch enqueue: `Task.batch_defer` (one INSERT)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

from benchmarks.systems.job import run_true

PG_DSN = os.environ.get("BENCH_PG_DSN", "")
QUEUE = "bench"
CONFIGURATIONS = {"concurrency": "1 worker, --concurrency N"}

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=PG_DSN))


@app.task(name="bench.run_true", queue=QUEUE, pass_context=True)
async def run_true_task(context: Any) -> None:
    recorded = await asyncio.to_thread(run_true)
    await context.app.connector.execute_query_async(
        "INSERT INTO bench_results (job_id, result) VALUES (%(job_id)s, %(result)s)",
        job_id=context.job.id,
        result=json.dumps(recorded),
    )


def worker_commands(slots: int, variant: str) -> list[list[str]]:
    cli = str(Path(sys.executable).parent / "procrastinate")
    worker = [cli, f"--app={__name__}.app", "worker", "--queues", QUEUE]
    return [[*worker, "--concurrency", str(slots)]]


def prepare() -> None:
    """Procrastinate's schema and the results table, once per database."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_results')").fetchone() != (None,):
            return
        conn.execute("CREATE TABLE bench_results (job_id BIGINT PRIMARY KEY, result JSONB)")
    with app.open():
        app.schema_manager.apply_schema()


@functools.cache
def _client() -> procrastinate.App:
    """The app opened once for the client (the worker opens its own)."""
    return app.open()


def enqueue_one() -> int:
    _client()
    return run_true_task.defer()


def enqueue_batch(count: int) -> list[int]:
    _client()
    return run_true_task.batch_defer(*({} for _ in range(count)))


def collect(handles: list[int]) -> list[dict[str, float]]:
    """Procrastinate has no result wait: the results are counted every 100 ms."""
    deadline = time.monotonic() + 900
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        while _count(conn, handles) < len(handles):
            if time.monotonic() > deadline:
                raise TimeoutError("Procrastinate jobs did not end")
            time.sleep(0.1)
        rows = conn.execute(
            "SELECT result FROM bench_results WHERE job_id = ANY(%s)", (handles,)
        ).fetchall()
    return [row[0] for row in rows]


def _count(conn: psycopg.Connection[Any], ids: list[int]) -> int:
    row = conn.execute("SELECT count(*) FROM bench_results WHERE job_id = ANY(%s)", (ids,))
    return int(row.fetchone()[0])
