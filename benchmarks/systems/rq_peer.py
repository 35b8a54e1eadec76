"""RQ: `slots` x `rq worker` on Redis, the default `Worker` (forks a work horse per job) or
`SimpleWorker` (runs the job in the worker process). Batch enqueue: `Queue.enqueue_many`
(one Redis pipeline)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from benchmarks.systems.job import run_true

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
QUEUE = "bench"
CONFIGURATIONS = {
    "fork": "N x rq worker (Worker: a forked work horse per job)",
    "simple": "N x rq worker -w rq.worker.SimpleWorker",
}
WORKER_CLASS = {"fork": "rq.worker.Worker", "simple": "rq.worker.SimpleWorker"}

redis = Redis.from_url(REDIS_URL)
queue = Queue(QUEUE, connection=redis)


def worker_commands(slots: int, variant: str) -> list[list[str]]:
    rq = str(Path(sys.executable).parent / "rq")
    worker = [rq, "worker", QUEUE, "--url", REDIS_URL, "-q", "-w", WORKER_CLASS[variant]]
    return [[*worker, "-n", f"bench-{variant}-{slot}-{os.getpid()}"] for slot in range(slots)]


def prepare() -> None:
    """Nothing: RQ's Redis keys come into being when used."""


def enqueue_one() -> str:
    return str(queue.enqueue(run_true, result_ttl=3600).id)


def enqueue_batch(count: int) -> list[str]:
    jobs = [Queue.prepare_data(run_true, result_ttl=3600) for _ in range(count)]
    return [str(job.id) for job in queue.enqueue_many(jobs)]


def collect(handles: list[str]) -> list[dict[str, float] | None]:
    """RQ's result wait is one job at a time; the statuses of up to 200 jobs not yet seen
    ended are read in one pipeline instead, every 100 ms (a light load on Redis)."""
    deadline = time.monotonic() + 900
    pending = list(handles)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError("RQ jobs did not end")
        pending = _still_running(pending[:200]) + pending[200:]
        if pending:
            time.sleep(0.1)
    jobs = Job.fetch_many(handles, connection=redis)
    return [job.return_value() if job else None for job in jobs]


ENDED = {JobStatus.FINISHED.value.encode(), JobStatus.FAILED.value.encode()}


def _still_running(ids: list[str]) -> list[str]:
    with redis.pipeline() as pipe:
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        statuses = pipe.execute()
    return [job_id for job_id, status in zip(ids, statuses, strict=True) if status not in ENDED]
