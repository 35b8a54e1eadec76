"""Waking idle workers when there is new work, instead of making them poll hard."""

from __future__ import annotations

import threading


class Wakeup:
    """An in-process signal: launches call `notify`, idle workers `wait` on it.

    A waiter takes a `mark()` before it looks for work and waits from that mark, so a
    notify that comes between its look and its wait is not lost.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def mark(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, timeout: float, *, since: int | None = None) -> None:
        """Return once notified after `since` (default: now), or after `timeout` seconds."""
        with self._condition:
            seen = self._generation if since is None else since
            self._condition.wait_for(lambda: self._generation != seen, timeout)
