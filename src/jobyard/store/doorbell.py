"""Waking the workers of other processes on one SQLite database, as `NOTIFY` does on
PostgreSQL (see `notify`): a file beside the database, `<file>.doorbell`, that a process
writes a byte to once it has committed new work, and that idle `jobyard worker`s watch with
inotify. The kernel tells every watcher at once, so no process keeps a list of the others,
and a ring that nobody watches costs one small write."""

from __future__ import annotations

import logging
import os
import threading

from inotify_simple import INotify, flags

logger = logging.getLogger(__name__)

FILE_MODE = 0o600  # beside the database, as private as it


def doorbell_path(database: str) -> str:
    return f"{database}.doorbell"


def _open(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


class Doorbell:
    """What a process rings after committing work that another process's worker may take.
    The file is opened at the first ring and kept open."""

    def __init__(self, database: str) -> None:
        self._path = doorbell_path(database)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._broken = False

    def ring(self) -> None:
        try:
            os.pwrite(self._descriptor(), b"\0", 0)
        except OSError as error:
            # The workers still find the work when they next look (an idle one looks every
            # second); say so once rather than at every launch.
            if not self._broken:
                self._broken = True
                logger.warning(
                    "cannot ring %s (%s): other workers find work later", self._path, error
                )

    def _descriptor(self) -> int:
        with self._lock:
            if self._fd is None:
                self._fd = _open(self._path)
            return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class DoorbellListener:
    """An idle worker's ear for the doorbell; the same shape as `notify.Listener`. Raises
    `OSError` where inotify is unavailable (the worker then polls)."""

    def __init__(self, database: str) -> None:
        self._path = doorbell_path(database)
        self._inotify: INotify | None = self._watch()

    def _watch(self) -> INotify:
        os.close(_open(self._path))  # a watch needs the file; no ring may have come yet
        watcher = INotify()
        try:
            watcher.add_watch(self._path, flags.MODIFY)
        except OSError:
            watcher.close()
            raise
        return watcher

    def wait(self, timeout: float) -> bool:
        """True when the doorbell rang within `timeout` seconds (rings that came together are
        heard as one). After `close`, it watches anew."""
        if self._inotify is None:
            self._inotify = self._watch()
        return bool(self._inotify.read(timeout=max(0, round(timeout * 1000))))

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
