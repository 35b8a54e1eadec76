"""One family of errors for everything a call to a jobyard server can end with: each carries
the HTTP status (None when no answer came), the server's problem details and its message."""

from __future__ import annotations

from typing import Any


class JobyardClientError(Exception):
    """A call to the server failed."""

    def __init__(self, message: str, *, status: int | None = None, problem: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = problem if isinstance(problem, dict) else {}

    @property
    def message(self) -> str:
        return str(self.args[0])


class ServerUnreachable(JobyardClientError):
    """No answer: the server is down, the address is wrong, or it took too long."""


class AuthenticationFailed(JobyardClientError):
    """401: no valid token (missing, wrong, revoked or expired); 403: not allowed."""


class NotFound(JobyardClientError):
    """404: no such object for this caller (another customer's objects do not exist)."""


class Refused(JobyardClientError):
    """Any other 4xx: the request is not valid, or breaks a rule (the message says which)."""


class ServerFailed(JobyardClientError):
    """5xx: the server could not do it (503: try again later)."""


def error_for(status: int, problem: Any, fallback: str) -> JobyardClientError:
    """The error for an answer with `status`, its message taken from the problem details."""
    message = fallback
    if isinstance(problem, dict):
        message = str(problem.get("error") or problem.get("detail") or fallback)
    if status in {401, 403}:
        kind: type[JobyardClientError] = AuthenticationFailed
    elif status == 404:  # noqa: PLR2004
        kind = NotFound
    elif status >= 500:  # noqa: PLR2004
        kind = ServerFailed
    else:
        kind = Refused
    return kind(message, status=status, problem=problem)
