"""Waking idle workers when there is new work, instead of making them poll hard."""

from __future__ import annotations

import threading


class Wakeup:
    """An in-process signal: launches call `notify`, idle worker slots `wait` on it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> None:
        """Return on the next notify, or after `timeout` seconds."""
        with self._condition:
            seen = self._generation
            self._condition.wait_for(lambda: self._generation != seen, timeout)
