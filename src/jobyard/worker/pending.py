"""A run's output that is not stored yet: in memory, and past a size in a private file.

Output waits here while the database cannot take it (an outage: the run's end, with the
last of its output, is kept until it can be written). A run's output is capped (10 MiB by
default) but a worker runs many: past `MEMORY_BYTES` a run's pending output moves to a file
of its own under the worker's spool directory (0700, the file 0600: output may hold a job's
secrets), which is removed once the output is stored.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

MEMORY_BYTES = 1024 * 1024  # per run, before its pending output moves to disk
SPOOL_DIR_MODE = 0o700
SPOOL_FILE_MODE = 0o600

Chunk = tuple[str, int, bytes]  # stream, offset in the combined log, bytes


@dataclass(frozen=True)
class _Spilled:
    stream: str
    offset: int
    position: int  # in the spool file
    length: int


class PendingOutput:
    """Chunks in arrival order; not thread-safe (its recorder holds a lock around it)."""

    def __init__(self, spool_dir: Path, name: str) -> None:
        self._spool_dir = spool_dir
        self._name = name
        self._memory: list[tuple[str, int, bytearray]] = []
        self._memory_bytes = 0
        self._spilled: list[_Spilled] = []
        self._file: int | None = None
        self._file_size = 0

    def __bool__(self) -> bool:
        return bool(self._memory or self._spilled)

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    def add(self, stream: str, offset: int, data: bytes) -> None:
        if self._memory and self._memory[-1][0] == stream:
            self._memory[-1][2].extend(data)
        else:
            self._memory.append((stream, offset, bytearray(data)))
        self._memory_bytes += len(data)
        if self._memory_bytes > MEMORY_BYTES:
            self._spill()

    def chunks(self) -> list[Chunk]:
        """Everything pending, oldest first (what is on disk is read back)."""
        found: list[Chunk] = []
        if self._file is not None:
            for spilled in self._spilled:
                data = os.pread(self._file, spilled.length, spilled.position)
                found.append((spilled.stream, spilled.offset, data))
        found += [(stream, offset, bytes(data)) for stream, offset, data in self._memory]
        return found

    def clear(self) -> None:
        """Forget what is pending (it is stored), and remove the spool file if any."""
        self._memory = []
        self._memory_bytes = 0
        self._spilled = []
        if self._file is not None:
            os.close(self._file)
            self._file = None
            self._file_size = 0
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)

    @property
    def _path(self) -> Path:
        return self._spool_dir / self._name

    def _spill(self) -> None:
        if self._file is None:
            self._spool_dir.mkdir(mode=SPOOL_DIR_MODE, parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
            self._file = os.open(self._path, flags, SPOOL_FILE_MODE)
        for stream, offset, data in self._memory:
            _write_all(self._file, data, self._file_size)
            self._spilled.append(_Spilled(stream, offset, self._file_size, len(data)))
            self._file_size += len(data)
        self._memory = []
        self._memory_bytes = 0


def _write_all(fd: int, data: bytearray, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
