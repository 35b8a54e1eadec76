"""The one decision of how a run ends, as a table: each row is a way a run ends, the job's
attempt, what it reported while running and its retry policy, and where run and job go."""

from __future__ import annotations

import pytest

from jobyard.domain.outcomes import Outcome, OutcomeStatus
from jobyard.domain.run_end import (
    NO_PROCESS,
    Backoff,
    Decision,
    Ended,
    ProcessEnd,
    RetryPolicy,
    RunEnd,
    decide,
)
from jobyard.domain.statuses import JobStatus as J
from jobyard.domain.statuses import RunStatus as R
from jobyard.domain.statuses import can_transition, can_transition_run

EXIT_0 = RunEnd(Ended.PROCESS, ProcessEnd(0, None, False, False, 10, False, pid=7))
EXIT_3 = RunEnd(Ended.PROCESS, ProcessEnd(3, None, False, False, 10, False, pid=7))
KILLED = RunEnd(Ended.PROCESS, ProcessEnd(None, 9, False, False, 0, False, pid=7))
TIMED_OUT = RunEnd(Ended.PROCESS, ProcessEnd(None, 15, True, False, 0, False, pid=7))
CANCELLED = RunEnd(Ended.PROCESS, ProcessEnd(None, 15, False, True, 0, False, pid=7))
NEVER_STARTED = RunEnd(Ended.PROCESS, NO_PROCESS)
HANDED_BACK = RunEnd(Ended.HANDED_BACK, reason="handed back")
LOST = RunEnd(Ended.LOST, reason="its worker died")
OVERDUE = RunEnd(Ended.OVERDUE, reason="past its timeout")
REPORTED = RunEnd(Ended.REPORTED, reason="reported")
CANCELLED_OUTSIDE = RunEnd(Ended.CANCELLED, reason="cancelled from outside")

ONCE = RetryPolicy()
THRICE = RetryPolicy(max_attempts=3, retry_delay_seconds=5.0)
THRICE_NOT_LOST = RetryPolicy(max_attempts=3, retry_delay_seconds=5.0, rerun_lost=False)
OK = Outcome(OutcomeStatus.COMPLETED_OK, "fine")
ISSUES = Outcome(OutcomeStatus.COMPLETED_WITH_ISSUES, "flaky")

ROWS: list[tuple[str, RunEnd, int, Outcome | None, RetryPolicy, Decision]] = [
    ("exit 0", EXIT_0, 1, None, THRICE, Decision(R.COMPLETED, J.COMPLETED, "exit code 0")),
    ("exit 3, once", EXIT_3, 1, None, ONCE, Decision(R.FAILED, J.FAILED, "exit code 3")),
    (
        "exit 3, retried",
        EXIT_3,
        1,
        None,
        THRICE,
        Decision(R.FAILED, J.PENDING, "attempt 1 failed (exit code 3); retrying", 5.0),
    ),
    (
        "exit 3, last attempt",
        EXIT_3,
        3,
        None,
        THRICE,
        Decision(R.FAILED, J.FAILED, "exit code 3"),
    ),
    (
        "killed, retried",
        KILLED,
        2,
        None,
        THRICE,
        Decision(R.FAILED, J.PENDING, "attempt 2 failed (killed by signal 9); retrying", 5.0),
    ),
    ("killed, once", KILLED, 1, None, ONCE, Decision(R.FAILED, J.FAILED, "killed by signal 9")),
    (
        "timed out, retried",
        TIMED_OUT,
        1,
        None,
        THRICE,
        Decision(R.TIMED_OUT, J.PENDING, "attempt 1 timed_out (timed out); retrying", 5.0),
    ),
    ("timed out, once", TIMED_OUT, 1, None, ONCE, Decision(R.TIMED_OUT, J.TIMED_OUT, "timed out")),
    ("cancelled", CANCELLED, 1, None, THRICE, Decision(R.CANCELLED, J.CANCELLED, "cancelled")),
    (
        "cancelled after an outcome",
        CANCELLED,
        1,
        OK,
        THRICE,
        Decision(R.CANCELLED, J.CANCELLED, "cancelled"),
    ),
    (
        "never started",
        NEVER_STARTED,
        1,
        None,
        ONCE,
        Decision(R.FAILED, J.FAILED, "exit code None"),
    ),
    (
        "failed after reporting ok",
        EXIT_3,
        1,
        OK,
        THRICE,
        Decision(R.FAILED, J.COMPLETED, "exit code 3"),
    ),
    (
        "exit 0 after reporting issues",
        EXIT_0,
        1,
        ISSUES,
        THRICE,
        Decision(R.COMPLETED, J.COMPLETED_WITH_ISSUES, "exit code 0"),
    ),
    (
        "handed back",
        HANDED_BACK,
        3,
        None,
        THRICE,
        Decision(R.LOST, J.PENDING, "handed back", 0.0),
    ),
    (
        "handed back after an outcome",
        HANDED_BACK,
        1,
        OK,
        ONCE,
        Decision(R.LOST, J.PENDING, "handed back", 0.0),
    ),
    ("lost, once", LOST, 1, None, ONCE, Decision(R.LOST, J.LOST, "its worker died")),
    (
        "lost, retried",
        LOST,
        1,
        None,
        THRICE,
        Decision(R.LOST, J.PENDING, "attempt 1 lost (its worker died); retrying", 5.0),
    ),
    (
        "lost, never run twice",
        LOST,
        1,
        None,
        THRICE_NOT_LOST,
        Decision(R.LOST, J.LOST, "its worker died"),
    ),
    (
        "failed, never run twice still retries failures",
        EXIT_3,
        1,
        None,
        THRICE_NOT_LOST,
        Decision(R.FAILED, J.PENDING, "attempt 1 failed (exit code 3); retrying", 5.0),
    ),
    (
        "lost after reporting ok",
        LOST,
        1,
        OK,
        THRICE,
        Decision(R.LOST, J.COMPLETED, "its worker died"),
    ),
    (
        "overdue, retried",
        OVERDUE,
        1,
        None,
        THRICE,
        Decision(R.TIMED_OUT, J.PENDING, "attempt 1 timed_out (past its timeout); retrying", 5.0),
    ),
    (
        "overdue, last attempt",
        OVERDUE,
        3,
        None,
        THRICE,
        Decision(R.TIMED_OUT, J.TIMED_OUT, "past its timeout"),
    ),
    (
        "external, reported ok",
        REPORTED,
        1,
        OK,
        THRICE,
        Decision(R.COMPLETED, J.COMPLETED, "reported"),
    ),
    (
        "external, reported with issues",
        REPORTED,
        1,
        ISSUES,
        THRICE,
        Decision(R.COMPLETED, J.COMPLETED_WITH_ISSUES, "reported"),
    ),
    (
        "external, cancelled",
        CANCELLED_OUTSIDE,
        1,
        None,
        THRICE,
        Decision(R.CANCELLED, J.CANCELLED, "cancelled from outside"),
    ),
]


@pytest.mark.parametrize(
    ("end", "attempt", "outcome", "policy", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_how_a_run_ends(
    end: RunEnd, attempt: int, outcome: Outcome | None, policy: RetryPolicy, expected: Decision
) -> None:
    assert decide(end, attempt=attempt, outcome=outcome, policy=policy) == expected


@pytest.mark.parametrize("end", [row[1] for row in ROWS], ids=[row[0] for row in ROWS])
def test_every_decision_is_a_transition_of_a_running_job_and_run(end: RunEnd) -> None:
    for attempt in (1, 3):
        for outcome in (None, OK):
            for policy in (ONCE, THRICE, THRICE_NOT_LOST):
                decision = decide(end, attempt=attempt, outcome=outcome, policy=policy)
                assert can_transition(J.RUNNING, decision.job_status)
                assert can_transition_run(R.RUNNING, decision.run_status)
                assert decision.job_finished == (decision.job_status is not J.PENDING)


EXPONENTIAL = RetryPolicy(
    max_attempts=10,
    retry_delay_seconds=2.0,
    backoff=Backoff.EXPONENTIAL,
    retry_delay_max_seconds=20.0,
)


def test_an_exponential_delay_doubles_after_each_failed_attempt_up_to_its_cap() -> None:
    delays = [EXPONENTIAL.delay_after(attempt, draw=0.0) for attempt in range(1, 7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert EXPONENTIAL.delay_after(10_000, draw=0.0) == 20.0  # no overflow far out
    fixed = RetryPolicy(max_attempts=10, retry_delay_seconds=2.0)
    assert [fixed.delay_after(attempt, draw=0.0) for attempt in (1, 5)] == [2.0, 2.0]


def test_jitter_takes_off_at_most_its_share_of_the_delay() -> None:
    jittered = RetryPolicy(
        max_attempts=3, retry_delay_seconds=10.0, backoff=Backoff.FIXED, retry_jitter=0.25
    )
    assert jittered.delay_after(1, draw=0.0) == 10.0
    assert jittered.delay_after(1, draw=0.5) == 8.75
    assert jittered.delay_after(1, draw=1.0) == 7.5


def test_the_decision_carries_the_backoff_delay_of_the_attempt() -> None:
    third = decide(EXIT_3, attempt=3, outcome=None, policy=EXPONENTIAL)
    assert third.job_status is J.PENDING
    assert third.retry_delay == 8.0
