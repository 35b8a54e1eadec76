"""Buffers a run's output and stores it in chunks, so any API process can serve the log."""

from __future__ import annotations

import time

from jobyard.services import execution
from jobyard.services.runtime import Runtime
from jobyard.worker.supervisor import Stream

FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.25  # how stale a live log may be while output trickles in


class OutputRecorder:
    """Collects (stream, bytes) pieces and writes them out by size or age."""

    def __init__(self, rt: Runtime, *, run_id: int) -> None:
        self.rt = rt
        self.run_id = run_id
        self.offset = 0
        self._pending: list[tuple[str, int, bytes]] = []
        self._pending_bytes = 0
        self._last_flush = time.monotonic()

    def add(self, stream: Stream, data: bytes) -> None:
        if self._pending and self._pending[-1][0] == stream.value:
            kind, start, previous = self._pending[-1]
            self._pending[-1] = (kind, start, previous + data)
        else:
            self._pending.append((stream.value, self.offset, data))
        self.offset += len(data)
        self._pending_bytes += len(data)
        if (
            self._pending_bytes >= FLUSH_BYTES
            or time.monotonic() - self._last_flush > FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self._pending:
            execution.save_output(self.rt, run_id=self.run_id, chunks=self._pending)
        self._pending = []
        self._pending_bytes = 0
        self._last_flush = time.monotonic()
