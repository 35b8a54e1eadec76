"""What a worker tells about each run it holds: one log line when its process exists and
one when its end is stored (status, exit code, duration), and the matching metrics."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from jobyard.domain.run_end import ProcessEnd
from jobyard.domain.statuses import JobStatus
from jobyard.services import metrics

if TYPE_CHECKING:
    from jobyard.worker.starting import Running

logger = logging.getLogger("jobyard.jobs")


def run_started(running: Running) -> None:
    job = running.work.claim.job
    waited = running.spawned - job.run_at.timestamp() if job.run_at is not None else None
    if waited is not None:
        metrics.LAUNCH_TO_START.observe(max(0.0, waited))
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "job %d started",
            job.id,
            extra={
                "event": "job.started",
                "job_id": job.id,
                "run_id": running.run_id,
                "attempt": running.work.claim.attempt,
                "package_id": job.package_id,
                "pid": running.pid,
                "waited_ms": None if waited is None else round(waited * 1000, 1),
            },
        )


def run_ended(running: Running, result: ProcessEnd, status: JobStatus) -> None:
    job = running.work.claim.job
    ran = (running.ended_at or time.monotonic()) - running.started_at
    seconds = ran if running.started_at else 0.0
    metrics.RUN_DURATION.labels(status.value).observe(seconds)
    metrics.RUNS_ENDED.labels(str(job.package_id), status.value).inc()
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "job %d ended %s",
            job.id,
            status.value,
            extra={
                "event": "job.ended",
                "job_id": job.id,
                "run_id": running.run_id,
                "attempt": running.work.claim.attempt,
                "package_id": job.package_id,
                "status": status.value,
                "exit_code": result.exit_code,
                "signal": result.signal,
                "timed_out": result.timed_out,
                "cancelled": result.cancelled,
                "duration_ms": round(seconds * 1000, 1),
            },
        )
