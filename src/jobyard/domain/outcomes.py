"""A job's final result (BigChange's outcome) and the rules it must keep."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from jobyard.domain.statuses import JobStatus
from jobyard.errors import RuleViolation, ValidationFailed


class OutcomeStatus(enum.StrEnum):
    COMPLETED_OK = "completedOk"
    COMPLETED_WITH_ISSUES = "completedWithIssues"

    @property
    def job_status(self) -> JobStatus:
        if self is OutcomeStatus.COMPLETED_OK:
            return JobStatus.COMPLETED
        return JobStatus.COMPLETED_WITH_ISSUES


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    result: str  # "" = none given (allowed only when completing with issues)


def parse_status(value: str) -> OutcomeStatus:
    try:
        return OutcomeStatus(value)
    except ValueError:
        raise ValidationFailed(
            f"invalid status {value!r}: expected completedOk or completedWithIssues",
            field="status",
        ) from None


def check_outcome(
    outcome: Outcome, *, positive: Sequence[str], negative: Sequence[str] | None
) -> None:
    """The result must be one of the package's options for that status, exactly (case and
    whitespace); with no negative options a job can never complete with issues."""
    if outcome.status is OutcomeStatus.COMPLETED_OK:
        if outcome.result not in positive:
            raise RuleViolation(
                f"result {outcome.result!r} is not one of the positive results {list(positive)}",
                field="result",
            )
        return
    if negative is None:
        raise RuleViolation(
            "this job's package has no negative results: it cannot complete with issues",
            field="status",
        )
    if outcome.result and outcome.result not in negative:  # optional with issues
        raise RuleViolation(
            f"result {outcome.result!r} is not one of the negative results {list(negative)}",
            field="result",
        )
