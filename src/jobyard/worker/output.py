"""Buffers a run's output and stores it in chunks, so any API process can serve the log."""

from __future__ import annotations

import threading
import time

from jobyard.services import execution
from jobyard.services.runtime import Runtime
from jobyard.worker.supervisor import Stream

FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.25  # how stale a live log may be while output trickles in


class OutputRecorder:
    """Collects (stream, bytes) pieces and writes them out by size, or by age when the
    pool's watcher calls `flush_if_stale` (a quiet process must not hide its last line).
    What is left when the process ends is `take`n and stored with the run's end."""

    def __init__(self, rt: Runtime, *, run_id: int) -> None:
        self.rt = rt
        self.run_id = run_id
        self.offset = 0
        self._pending: list[tuple[str, int, bytearray]] = []
        self._pending_bytes = 0
        self._oldest = 0.0
        self._lock = threading.Lock()

    def add(self, stream: Stream, data: bytes) -> None:
        with self._lock:
            if self._pending and self._pending[-1][0] == stream.value:
                self._pending[-1][2].extend(data)
            else:
                self._pending.append((stream.value, self.offset, bytearray(data)))
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

    def take(self) -> list[tuple[str, int, bytes]]:
        """What is not stored yet, to be stored with the run's end (one transaction less)."""
        with self._lock:
            chunks = self._chunks()
            self._pending = []
            self._pending_bytes = 0
            return chunks

    def _chunks(self) -> list[tuple[str, int, bytes]]:
        return [(stream, offset, bytes(data)) for stream, offset, data in self._pending]

    def _flush_locked(self) -> None:
        if self._pending:
            execution.save_output(self.rt, run_id=self.run_id, chunks=self._chunks())
        self._pending = []
        self._pending_bytes = 0
