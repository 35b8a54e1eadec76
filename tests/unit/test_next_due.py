"""An engine reads the next due time only where it cannot know it (`worker/due.py`): before
its first idle wait, after a wake-up that brought nothing to claim, and once the time it
knew of has come; never for one-by-one launches each claimed at its wake-up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from jobyard.worker.due import NextDue

NOW = time.time()


class Reads:
    """What the database would answer, and how often it was asked."""

    def __init__(self, due: datetime | None) -> None:
        self.due = due
        self.count = 0
        self.failing = False
        self.after: datetime | None = None

    def __call__(self, after: datetime) -> datetime | None:
        self.count += 1
        self.after = after
        if self.failing:
            raise ConnectionError("the database is out of reach")
        return self.due


def test_one_by_one_launches_read_it_once() -> None:
    reads = Reads(None)
    due = NextDue(reads)
    due.after_turn(0, began=NOW, claimed=0, asked=2)  # the first idle turn
    for mark in range(1, 50):  # a launch wakes it, it claims the job, then ends it
        due.after_turn(mark, began=NOW, claimed=1, asked=2)
        due.after_turn(mark, began=NOW, claimed=0, asked=2)
    assert reads.count == 1
    assert due.seconds_left() is None


def test_a_wake_up_with_nothing_to_claim_reads_it_again() -> None:
    reads = Reads(None)
    due = NextDue(reads)
    due.after_turn(0, began=NOW, claimed=0, asked=2)
    reads.due = datetime.now(UTC) + timedelta(seconds=30)  # launched for later
    due.after_turn(1, began=NOW, claimed=0, asked=2)
    assert reads.count == 2
    left = due.seconds_left()
    assert left is not None
    assert 25 < left <= 30


def test_a_time_come_reads_the_next_one() -> None:
    reads = Reads(datetime.now(UTC) - timedelta(seconds=1))  # read just before it came due
    due = NextDue(reads)
    due.after_turn(0, began=NOW, claimed=0, asked=2)
    assert due.seconds_left() == 0.0  # the next turn is due at once
    reads.due = None
    due.after_turn(0, began=NOW, claimed=1, asked=2)  # that turn claimed it
    assert reads.count == 2
    assert due.seconds_left() is None


def test_full_turns_read_nothing() -> None:
    reads = Reads(None)
    due = NextDue(reads)
    for mark in range(10):
        due.after_turn(mark, began=NOW, claimed=4, asked=4)
    assert reads.count == 0


@pytest.mark.parametrize("then", [None, 60])
def test_a_failed_read_is_tried_again_at_the_next_idle_turn(then: int | None) -> None:
    reads = Reads(None)
    reads.failing = True
    due = NextDue(reads)
    due.after_turn(0, began=NOW, claimed=0, asked=2)
    assert due.seconds_left() is None  # the idle wait as before
    reads.failing = False
    reads.due = None if then is None else datetime.now(UTC) + timedelta(seconds=then)
    due.after_turn(0, began=NOW, claimed=0, asked=2)
    assert reads.count == 2
    assert (due.seconds_left() is None) is (then is None)


def test_a_job_due_while_the_turn_ran_is_read_as_due_at_once() -> None:
    """Read after the turn's start, not after the read's own time: a job that came due in
    between (too late for the turn's claim) is the next due, and the next turn comes at
    once, not after the idle wait."""
    began = datetime.now(UTC) - timedelta(milliseconds=5)
    reads = Reads(began + timedelta(milliseconds=2))
    due = NextDue(reads)
    due.after_turn(0, began=began.timestamp(), claimed=0, asked=2)
    assert reads.after == began
    assert due.seconds_left() == 0.0
