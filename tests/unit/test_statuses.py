"""The status machine: what may follow what, and what a process's end means."""

from __future__ import annotations

import pytest

from jobyard.domain.statuses import (
    TERMINAL,
    JobStatus,
    RunStatus,
    can_transition,
    check_transition,
    exit_status,
    sources_of,
)
from jobyard.errors import InvalidTransition


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_a_terminal_job_never_changes_again(terminal: JobStatus) -> None:
    for other in JobStatus:
        assert not can_transition(terminal, other)


def test_pending_may_only_start_or_be_cancelled() -> None:
    allowed = {s for s in JobStatus if can_transition(JobStatus.PENDING, s)}
    assert allowed == {JobStatus.RUNNING, JobStatus.CANCELLED}


def test_running_may_end_any_way_or_wait_for_a_retry() -> None:
    allowed = {s for s in JobStatus if can_transition(JobStatus.RUNNING, s)}
    assert allowed == set(TERMINAL) | {JobStatus.PENDING}


def test_check_transition_names_both_statuses() -> None:
    with pytest.raises(InvalidTransition, match="a completed job cannot become running"):
        check_transition(JobStatus.COMPLETED, JobStatus.RUNNING)


def test_sources_of_cancelled() -> None:
    assert sources_of(JobStatus.CANCELLED) == {JobStatus.PENDING, JobStatus.RUNNING}


@pytest.mark.parametrize(
    ("exit_code", "timed_out", "cancelled", "expected"),
    [
        (0, False, False, (JobStatus.COMPLETED, RunStatus.COMPLETED)),
        (1, False, False, (JobStatus.FAILED, RunStatus.FAILED)),
        (None, False, False, (JobStatus.FAILED, RunStatus.FAILED)),
        (None, True, False, (JobStatus.TIMED_OUT, RunStatus.TIMED_OUT)),
        (0, False, True, (JobStatus.CANCELLED, RunStatus.CANCELLED)),
    ],
)
def test_exit_status(
    exit_code: int | None,
    timed_out: bool,
    cancelled: bool,
    expected: tuple[JobStatus, RunStatus],
) -> None:
    assert exit_status(exit_code=exit_code, timed_out=timed_out, cancelled=cancelled) == expected


def test_active_is_true_exactly_while_running() -> None:
    assert [s for s in JobStatus if s.active] == [JobStatus.RUNNING]
