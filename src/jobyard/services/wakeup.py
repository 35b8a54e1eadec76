"""Waking idle workers when there is new work, instead of making them poll hard: in memory
within a process, through PostgreSQL's announcements across hosts, and through SQLite's
doorbell across the processes of one host."""

from __future__ import annotations

import threading
from collections.abc import Callable

from jobyard.store.doorbell import DoorbellListener
from jobyard.store.notify import Listener

# A dedicated connection that hears announcements of new work (PostgreSQL).
WorkListener = Listener
# The same for the processes that share an SQLite file.
DoorbellWorkListener = DoorbellListener


class Wakeup:
    """An in-process signal: launches call `notify`, and every subscribed worker is woken
    (a worker waits on its children and a wake-up pipe, so it subscribes a callback).

    A worker takes a `mark()` before it looks for work; a mark that has changed since says
    a notify came between its look and its wait, so none is lost.

    `announce`, where set, also tells other processes (SQLite's doorbell); what a process
    hears from them it passes on with `heard`, which does not announce again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._subscribers: list[Callable[[], None]] = []
        self.announce: Callable[[], None] | None = None

    def notify(self) -> None:
        """New work was committed: wake this process's workers, and the others' too."""
        if self.announce is not None:
            self.announce()
        self.heard()

    def heard(self) -> None:
        """Another process announced new work: wake this process's workers."""
        with self._lock:
            self._generation += 1
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` (quick, and safe from any thread) on every notify."""
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def mark(self) -> int:
        with self._lock:
            return self._generation
