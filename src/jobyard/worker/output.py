"""Buffers a run's output and stores it in chunks, so any API process can serve the log.

Nothing is dropped when the database cannot take a write: the output stays pending (see
`pending`) and goes with the next write, or with the run's end, which the engine keeps and
retries until it is stored (the output and the end in one transaction).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from jobyard.services import execution
from jobyard.services.runtime import Runtime
from jobyard.worker.pending import Chunk, PendingOutput
from jobyard.worker.spawning import Stream

logger = logging.getLogger(__name__)

FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.25  # how stale a live log may be while output trickles in


class Backoff:
    """When to try the database again after a write failed: shared by a pool's recorders
    and its engine, so an outage costs one failed attempt per period, not one per run."""

    FIRST_SECONDS = 0.25
    MOST_SECONDS = 2.0  # well inside a lease (15 s by default): an outage's end is seen soon

    def __init__(self) -> None:
        self._delay = 0.0
        self._until = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._until

    def left(self) -> float:
        """Seconds until the next try is due."""
        return max(0.0, self._until - time.monotonic())

    def failed(self) -> float:
        """Note a failed write; return the wait before the next try."""
        self._delay = min(self.MOST_SECONDS, max(self.FIRST_SECONDS, 2 * self._delay))
        self._until = time.monotonic() + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._until = 0.0


class OutputRecorder:
    """Collects (stream, bytes) pieces and writes them out by size, or by age when the
    pool's watcher calls `flush_if_stale` (a quiet process must not hide its last line).
    Once the process has ended (`close`), what is left is stored with the run's end: the
    engine reads it with `pending` and drops it with `stored` once that end is written."""

    def __init__(self, rt: Runtime, *, run_id: int, backoff: Backoff, spool_dir: Path) -> None:
        self.rt = rt
        self.run_id = run_id
        self.offset = 0
        self._backoff = backoff
        self._pending = PendingOutput(spool_dir, f"run-{run_id}")
        self._pending_bytes = 0
        self._oldest = 0.0
        self._closed = False
        self._lock = threading.Lock()

    def add(self, stream: Stream, data: bytes) -> None:
        with self._lock:
            self._pending.add(stream.value, self.offset, data)
            if not self._pending_bytes:
                self._oldest = time.monotonic()
            self.offset += len(data)
            self._pending_bytes += len(data)
            if self._pending_bytes >= FLUSH_BYTES:
                self._flush_locked()

    def flush_if_stale(self) -> None:
        with self._lock:
            if self._pending and time.monotonic() - self._oldest >= FLUSH_SECONDS:
                self._flush_locked()

    def close(self) -> None:
        """The process has ended: what is pending now goes with the run's end, only."""
        with self._lock:
            self._closed = True

    def pending(self) -> list[Chunk]:
        """What is not stored yet, for the run's end (kept until `stored`)."""
        with self._lock:
            return self._pending.chunks()

    def stored(self) -> None:
        """The run's end, with the pending output, is written."""
        with self._lock:
            self._pending.clear()
            self._pending_bytes = 0

    def _flush_locked(self) -> None:
        if self._closed or not self._pending or not self._backoff.ready():
            return
        try:
            execution.save_output(self.rt, run_id=self.run_id, chunks=self._pending.chunks())
        except Exception as error:
            # Kept for the next try: a live log lags during an outage, and nothing is lost.
            self._backoff.failed()
            if execution.worth_retrying(error):
                logger.debug("run %s: output kept for later: %s", self.run_id, error)
            else:
                logger.exception("run %s: storing output failed; kept for later", self.run_id)
            return
        self._backoff.succeeded()
        self._pending.clear()
        self._pending_bytes = 0
