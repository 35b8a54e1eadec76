"""Waking idle workers when there is new work, instead of making them poll hard: in memory
within a process, and through PostgreSQL's announcements across hosts."""

from __future__ import annotations

import threading
from collections.abc import Callable

from jobyard.store.notify import Listener

# A dedicated connection that hears announcements of new work (PostgreSQL only).
WorkListener = Listener


class Wakeup:
    """An in-process signal: launches call `notify`, and every subscribed worker is woken
    (a worker waits on its children and a wake-up pipe, so it subscribes a callback).

    A worker takes a `mark()` before it looks for work; a mark that has changed since says
    a notify came between its look and its wait, so none is lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._subscribers: list[Callable[[], None]] = []

    def notify(self) -> None:
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
