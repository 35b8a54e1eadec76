"""The one status machine for jobs and runs (docs/architecture.md, "Job and run statuses"); every
status write goes through it (store/transitions.py)."""

from __future__ import annotations

import enum

from jobyard.errors import InvalidTransition


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ISSUES = "completed_with_issues"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """CDRouter's `active`: true exactly while the job runs."""
        return self is JobStatus.RUNNING


TERMINAL = frozenset(
    {
        JobStatus.COMPLETED,
        JobStatus.COMPLETED_WITH_ISSUES,
        JobStatus.FAILED,
        JobStatus.TIMED_OUT,
        JobStatus.CANCELLED,
        JobStatus.LOST,
    }
)

# pending -> running is a claim; running -> pending is a retry that waits for its next attempt.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: TERMINAL | {JobStatus.PENDING},
    **{status: frozenset() for status in TERMINAL},
}


def can_transition(current: JobStatus, new: JobStatus) -> bool:
    return new in TRANSITIONS[current]


def check_transition(current: JobStatus, new: JobStatus) -> None:
    """Raise InvalidTransition unless `current -> new` is in the table."""
    if not can_transition(current, new):
        raise InvalidTransition(f"a {current} job cannot become {new}")


def sources_of(new: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `new` may be reached: the guard of a conditional UPDATE."""
    return frozenset(s for s, targets in TRANSITIONS.items() if new in targets)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


# A run is an attempt: it is running until it ends, once.
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset(s for s in RunStatus if s.terminal),
    **{status: frozenset() for status in RunStatus if status.terminal},
}


def can_transition_run(current: RunStatus, new: RunStatus) -> bool:
    return new in RUN_TRANSITIONS[current]


def run_sources_of(new: RunStatus) -> frozenset[RunStatus]:
    """Every status from which a run may reach `new`: the guard of a conditional UPDATE."""
    return frozenset(s for s, targets in RUN_TRANSITIONS.items() if new in targets)


def exit_status(
    *, exit_code: int | None, timed_out: bool, cancelled: bool
) -> tuple[JobStatus, RunStatus]:
    """What a finished command run means for its job and for the run itself."""
    if cancelled:
        return JobStatus.CANCELLED, RunStatus.CANCELLED
    if timed_out:
        return JobStatus.TIMED_OUT, RunStatus.TIMED_OUT
    if exit_code == 0:
        return JobStatus.COMPLETED, RunStatus.COMPLETED
    return JobStatus.FAILED, RunStatus.FAILED
