"""When the next job waiting for a later time comes due, as far as an engine knows: an idle
engine sleeps until then instead of its whole idle wait, so that a job launched for later,
or waiting out its retry delay, starts on time rather than up to the idle wait late.

Knowing costs a read (`execution.next_due`), so an engine looks only where it cannot know:
before its first idle wait; after a wake-up that brought it nothing to claim (a launch for
later, a retry put off, or a job another worker claimed first); and once the time it knew of
has come (that job is claimed now, and what comes after it is unknown). One-by-one launches
of jobs to run now, each claimed at its wake-up, read nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


class NextDue:
    """The engine's knowledge of the next due time; engine thread only."""

    def __init__(self, look_up: Callable[[datetime], datetime | None]) -> None:
        """`look_up(after)`: the first due time after `after` of a job waiting."""
        self._look_up = look_up
        self._at: float | None = None  # seconds since the epoch
        self._known = False
        self._mark: int | None = None  # the wake-up mark of the engine's last turn

    def after_turn(self, mark: int, *, began: float, claimed: int, asked: int) -> None:
        """Note a turn (taken at wake-up `mark`, begun at `began`, seconds since the epoch:
        a clock read every turn, made a date only for a read) that claimed `claimed` of
        the `asked` jobs; look the next due time up again where it may have changed unseen.
        A job that came due while the turn ran is after `began`: it is found, and the next
        turn comes at once."""
        woken, self._mark = mark != self._mark, mark
        if claimed >= asked:
            return  # not idle: the next turn comes soon anyway
        passed = self._at is not None and self._at <= time.time()
        if self._known and not passed and not (woken and claimed == 0):
            return
        try:
            due = self._look_up(datetime.fromtimestamp(began, UTC))
        except Exception as error:  # the turns meet the same outage, and say so
            logger.debug("the next due time could not be read: %s", error)
            self._known = False
            return
        self._at, self._known = (None if due is None else due.timestamp()), True

    def seconds_left(self) -> float | None:
        """Until the next due time known (None: none known)."""
        return None if self._at is None else max(0.0, self._at - time.time())
