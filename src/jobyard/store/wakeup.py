"""Waking idle workers when there is new work, instead of making them poll hard."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Wakeup:
    """An in-process signal: launches call `notify`, idle workers `wait` on it, or
    `subscribe` a callback when they wait on something else (a worker waits on its children).

    A waiter takes a `mark()` before it looks for work and waits from that mark, so a
    notify that comes between its look and its wait is not lost.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._subscribers: list[Callable[[], None]] = []

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` (quick, and safe from any thread) on every notify."""
        with self._condition:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._condition:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def mark(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, timeout: float, *, since: int | None = None) -> None:
        """Return once notified after `since` (default: now), or after `timeout` seconds."""
        with self._condition:
            seen = self._generation if since is None else since
            self._condition.wait_for(lambda: self._generation != seen, timeout)
