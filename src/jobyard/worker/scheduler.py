"""The scheduler: a thread that fires due schedules (`services.schedules.fire_due`).

It sleeps until the earliest `next_run` of any schedule, or until a schedule changes in this
process; a change made through another process (a PostgreSQL fleet) is seen within
`RECHECK_SECONDS`, and the processes that fire share the work without electing anyone: each
fire time launches once however many fire it (see `services.schedules`).
"""

from __future__ import annotations

import logging
import threading

from jobyard.services import schedules
from jobyard.services.runtime import Runtime

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 5.0  # a schedule made or changed through another process is seen this soon
ERROR_PAUSE_SECONDS = 1.0  # after a failed round (the database out of reach)
# At least this between rounds: a schedule another process is firing stays due until it
# commits, and must not make this one spin.
MIN_WAIT_SECONDS = 0.01


class Scheduler:
    """Fires due schedules from a thread of its own until stopped."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.rt.schedule_changes.subscribe(self._changed.set)
        self._thread = threading.Thread(target=self._loop, name="jobyard-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._changed.set()
        self.rt.schedule_changes.unsubscribe(self._changed.set)
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._changed.clear()
            wait = self._round()
            self._changed.wait(wait)

    def _round(self) -> float:
        """Fire what is due; return how long to sleep before the next round."""
        try:
            schedules.fire_due(self.rt)
            due_in = schedules.seconds_until_due(self.rt)
        except Exception:
            logger.exception("firing schedules failed; trying again")
            return ERROR_PAUSE_SECONDS
        if due_in is None:
            return RECHECK_SECONDS
        return max(MIN_WAIT_SECONDS, min(due_in, RECHECK_SECONDS))
