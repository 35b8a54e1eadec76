"""How a run ends: the one decision of what a run's end means for the run and for its job.

Every way a run can end comes here: its process ended (exited, was killed, timed out or was
cancelled), its worker gave it back while shutting down, its worker stopped renewing its
lease or died, it ran long past its timeout, or (an external job, which no process runs) its
end was reported or it was cancelled through the API. What the job reported while it ran (an
outcome) and its package's retry policy then decide where the job goes: to its end, or back
to pending for another attempt. Writing the decision is the store's; deciding is only here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jobyard.domain.outcomes import Outcome
from jobyard.domain.statuses import JobStatus, RunStatus, exit_status


class Ended(enum.Enum):
    """Who or what ended the run."""

    PROCESS = "process"  # its process ended: `ProcessEnd` says how
    HANDED_BACK = "handed_back"  # a worker shutting down gave the job back
    LOST = "lost"  # its worker stopped renewing the lease, or died
    OVERDUE = "overdue"  # the reaper ended it long past its timeout
    REPORTED = "reported"  # an external job's outcome was set through the API
    CANCELLED = "cancelled"  # an external job was cancelled through the API


@dataclass(frozen=True)
class ProcessEnd:
    """How a run's process ended, as the worker that ran it saw it."""

    exit_code: int | None  # None when a signal ended it, or it never started
    signal: int | None  # the signal that ended it, if any
    timed_out: bool
    cancelled: bool
    output_bytes: int  # everything the process wrote, kept or not
    truncated: bool
    pid: int = 0  # 0 when the program could not be started
    spawned: float = 0.0  # when the process came to exist, in seconds since the epoch; 0 if never


NO_PROCESS = ProcessEnd(None, None, False, False, 0, False)  # what a lost run leaves


class Backoff(enum.StrEnum):
    """How the wait before another attempt grows."""

    FIXED = "fixed"  # `retry_delay` every time
    EXPONENTIAL = "exponential"  # `retry_delay`, then doubled after each failed attempt


MAX_DOUBLINGS = 64  # past this an exponential delay is beyond any cap anyway


@dataclass(frozen=True)
class RetryPolicy:
    """The package's say on another attempt; a job without a package has one attempt."""

    max_attempts: int = 1
    retry_delay_seconds: float = 0.0
    rerun_lost: bool = True  # a run lost with its worker may be retried (at least once)
    backoff: Backoff = Backoff.FIXED
    retry_delay_max_seconds: float | None = None  # the cap of a growing delay; None: none
    # Up to this fraction of each delay is taken off at random, so that jobs that failed
    # together (a service down) do not all come back at the same moment.
    retry_jitter: float = 0.0

    def delay_after(self, attempt: int, draw: float) -> float:
        """The wait after failed attempt number `attempt` (from 1): the delay, doubled for
        each attempt before it when exponential, at most the cap, less `draw` (from 0 to 1)
        times the jitter's share of it."""
        delay = self.retry_delay_seconds
        if self.backoff is Backoff.EXPONENTIAL:
            delay *= 2.0 ** min(max(attempt - 1, 0), MAX_DOUBLINGS)
        if self.retry_delay_max_seconds is not None:
            delay = min(delay, self.retry_delay_max_seconds)
        return delay * (1.0 - self.retry_jitter * draw)


@dataclass(frozen=True)
class RunEnd:
    """What ends the run: `how`, how its process ended (NO_PROCESS when it had none, or none
    was seen to end), and, for a run ended from outside its process, why."""

    how: Ended
    process: ProcessEnd = NO_PROCESS
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """The run's status, the job's next status, and why. `retry_delay` is set when the job
    goes back to pending (0 for a hand-back, which is not a failed attempt)."""

    run_status: RunStatus
    job_status: JobStatus
    reason: str
    retry_delay: float | None = None

    @property
    def job_finished(self) -> bool:
        return self.retry_delay is None


RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.LOST})


def decide(
    end: RunEnd,
    *,
    attempt: int,
    outcome: Outcome | None,
    policy: RetryPolicy,
    draw: float = 0.0,
) -> Decision:
    """Where a running job goes now that its current run (attempt number `attempt`)
    ends as `end` says. `draw` (from 0 to 1, drawn at random by the caller) picks the
    retry delay's share of jitter."""
    run_status, ended = ended_statuses(end)
    reason = end.reason or _process_reason(end.process)
    if end.how is Ended.HANDED_BACK:
        return Decision(run_status, JobStatus.PENDING, reason, retry_delay=0.0)
    if outcome is not None and ended is not JobStatus.CANCELLED:
        ended = outcome.status.job_status  # what the job reported decides, unless cancelled
    elif _may_retry(end, ended, attempt, policy):
        retrying = f"attempt {attempt} {ended} ({reason}); retrying"
        delay = policy.delay_after(attempt, draw)
        return Decision(run_status, JobStatus.PENDING, retrying, delay)
    return Decision(run_status, ended, reason)


def ended_statuses(end: RunEnd) -> tuple[RunStatus, JobStatus]:
    """The run's status, and what the attempt means for the job before its reported outcome
    and retries are considered (the run's status depends on nothing else)."""
    if end.how is Ended.HANDED_BACK or end.how is Ended.LOST:
        return RunStatus.LOST, JobStatus.LOST
    if end.how is Ended.OVERDUE:
        return RunStatus.TIMED_OUT, JobStatus.TIMED_OUT
    if end.how is Ended.REPORTED:
        return RunStatus.COMPLETED, JobStatus.COMPLETED
    if end.how is Ended.CANCELLED:
        return RunStatus.CANCELLED, JobStatus.CANCELLED
    process = end.process
    job_status, run_status = exit_status(
        exit_code=process.exit_code, timed_out=process.timed_out, cancelled=process.cancelled
    )
    return run_status, job_status


def may_be_retried(end: RunEnd, outcome: Outcome | None) -> bool:
    """Whether the job's retry policy has a say in this end (otherwise it need not be read)."""
    return (
        outcome is None and end.how is not Ended.HANDED_BACK and ended_statuses(end)[1] in RETRYABLE
    )


def _may_retry(end: RunEnd, ended: JobStatus, attempt: int, policy: RetryPolicy) -> bool:
    if ended not in RETRYABLE or attempt >= policy.max_attempts:
        return False
    return policy.rerun_lost or end.how is not Ended.LOST


def _process_reason(process: ProcessEnd) -> str:
    if process.cancelled:
        return "cancelled"
    if process.timed_out:
        return "timed out"
    if process.signal is not None:
        return f"killed by signal {process.signal}"
    return f"exit code {process.exit_code}"
