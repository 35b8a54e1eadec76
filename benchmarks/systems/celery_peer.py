"""Celery: Redis broker and Redis result backend; the prefork pool (Celery's default) or the
threads pool, with `slots` as the pool's concurrency. Batch enqueue: `group(...).apply_async()`."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, group
from celery.result import ResultSet

from benchmarks.systems.job import run_true

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
QUEUE = "bench"
CONFIGURATIONS = {
    "prefork": "1 worker, --pool=prefork --concurrency=N",
    "threads": "1 worker, --pool=threads --concurrency=N",
}

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    result_expires=3600,
)


@app.task(name="bench.run_true")
def run_true_task() -> dict[str, float]:
    return run_true()


def worker_commands(slots: int, variant: str) -> list[list[str]]:
    worker = [sys.executable, "-m", "celery", "-A", __name__, "worker", "-Q", QUEUE]
    return [[*worker, f"--pool={variant}", f"--concurrency={slots}", "--loglevel=WARNING"]]


def prepare() -> None:
    """Nothing: Celery's Redis keys come into being when used."""


def enqueue_one() -> Any:
    return run_true_task.apply_async()


def enqueue_batch(count: int) -> list[Any]:
    return list(group(run_true_task.s() for _ in range(count)).apply_async().results)


def collect(handles: list[Any]) -> list[dict[str, float]]:
    results: list[dict[str, float]] = ResultSet(handles).get(timeout=900)
    return results
