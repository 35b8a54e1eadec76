"""Dramatiq: Redis broker and Redis results; `--processes P --threads T` with P x T = slots
(two processes, one per core, up to `slots`). Batch enqueue: `group(...).run()`, which sends
its messages one by one (Dramatiq's Redis broker has no batch enqueue)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from benchmarks.systems.job import run_true

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
QUEUE = "bench"
CONFIGURATIONS = {"processes": "--processes min(N, 2) --threads N / processes"}

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, store_results=True, max_retries=0)
def run_true_actor() -> dict[str, float]:
    return run_true()


def worker_commands(slots: int, variant: str) -> list[list[str]]:
    processes = min(slots, 2)
    threads = slots // processes
    dramatiq_cli = str(Path(sys.executable).parent / "dramatiq")
    options = ["--queues", QUEUE, "--processes", str(processes), "--threads", str(threads)]
    return [[dramatiq_cli, __name__, *options]]


def prepare() -> None:
    """Nothing: Dramatiq's Redis keys come into being when used."""


def enqueue_one() -> Any:
    return run_true_actor.send()


def enqueue_batch(count: int) -> list[Any]:
    messages = [run_true_actor.message() for _ in range(count)]
    dramatiq.group(messages).run()
    return messages


def collect(handles: list[Any]) -> list[dict[str, float]]:
    return [message.get_result(block=True, timeout=900_000) for message in handles]
