"""The one exception tree that every layer raises and `api/` maps to answers.

Each exception's message is what a client reads; nothing here knows HTTP.
"""

from __future__ import annotations


class JobyardError(Exception):
    """Something went wrong in jobyard."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(JobyardError):
    """No such object."""

    def __init__(self, message: str | None = None, *, ids: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.ids = ids  # when a request named several objects: the ones that do not exist


class ValidationFailed(JobyardError):
    """The request is not valid."""

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(JobyardError):
    """The request conflicts with the current state."""


class InvalidTransition(Conflict):
    """That status change is not allowed."""


class Unauthenticated(JobyardError):
    """invalid token"""


class Forbidden(JobyardError):
    """insufficient privileges"""


class PayloadTooLarge(JobyardError):
    """The request body is too large."""


class TryLater(JobyardError):
    """Not now; the same request may succeed after `retry_after` seconds."""

    default_retry_after = 60

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = self.default_retry_after if retry_after is None else retry_after


class TooManyAttempts(TryLater):
    """Too many failed attempts; try again later."""


class QueryTooSlow(TryLater):
    """The query ran past its time limit; narrow the filters or try again later."""

    default_retry_after = 5


class DatabaseUnavailable(TryLater):
    """The database cannot serve this request just now; try again shortly."""

    # For a database out of reach, or a lock or statement timeout (see `api/errors`).
    default_retry_after = 5


class RuleViolation(JobyardError):
    """The request is well-formed but breaks a rule of the job's state or type."""

    def __init__(self, message: str | None = None, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field
