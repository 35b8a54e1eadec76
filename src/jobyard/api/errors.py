"""Every error becomes one answer shape: CDRouter's `error` plus RFC 7807 members."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from jobyard import errors
from jobyard.api.bodies import describe
from jobyard.api.render import PROBLEM_TYPE, json_response, now_stamp
from jobyard.services import runtime

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[errors.JobyardError], int]] = [
    (errors.NotFound, 404),
    (errors.InvalidTransition, 409),
    (errors.Conflict, 409),
    (errors.ValidationFailed, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.PayloadTooLarge, 413),
    (errors.TooManyAttempts, 429),
    (errors.RuleViolation, 422),
    (errors.QueryTooSlow, 503),
    (errors.DatabaseUnavailable, 503),
]


def status_for(exc: errors.JobyardError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def problem(
    status: int, message: str, *, instance: str = "", extra: dict[str, object] | None = None
) -> Response:
    title = HTTPStatus(status).phrase
    body: dict[str, object] = {
        "timestamp": now_stamp(),
        "error": message,
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": message,
    }
    if instance:
        body["instance"] = instance
    body |= extra or {}
    response = json_response(body, status, media_type=PROBLEM_TYPE)
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobyard", Basic realm="jobyard"'
    return response


class ErrorRenderer(Protocol):
    """A dialect's error shape: the status, the message, and the error if one was raised."""

    def __call__(
        self, request: Request, status: int, message: str, exc: errors.JobyardError | None
    ) -> Response: ...


_DIALECT_RENDERERS: list[tuple[str, ErrorRenderer]] = []


def register_dialect(prefix: str, renderer: ErrorRenderer) -> None:
    """Errors on paths under `prefix` are rendered by `renderer`."""
    _DIALECT_RENDERERS.append((prefix, renderer))
    _DIALECT_RENDERERS.sort(key=lambda item: len(item[0]), reverse=True)


def native_error(
    request: Request, status: int, message: str, exc: errors.JobyardError | None
) -> Response:
    extra = error_details(exc) if exc is not None else {}
    response = problem(status, message, instance=request.url.path, extra=extra)
    if isinstance(exc, errors.TryLater):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def renderer_for(path: str) -> ErrorRenderer:
    for prefix, renderer in _DIALECT_RENDERERS:
        if (
            path == prefix
            or path.startswith(prefix.rstrip("/") + "/")
            or path.startswith(prefix + ".")
        ):
            return renderer
    return native_error


async def _jobyard_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, errors.JobyardError):  # pragma: no cover - registered for it only
        raise exc
    return renderer_for(request.url.path)(request, status_for(exc), exc.message, exc)


def error_details(exc: errors.JobyardError) -> dict[str, object]:
    """Validation problems name their field: `errors` maps it to its messages (RFC 7807
    extension, as ASP.NET and BigChange send it); a request naming objects that do not
    exist lists their ids in `not_found`."""
    if isinstance(exc, errors.RuleViolation) and exc.field:
        return {"errors": {exc.field: [exc.message]}}
    if isinstance(exc, errors.NotFound) and exc.ids:
        return {"not_found": [str(i) for i in exc.ids]}
    return {}


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    messages = {404: "no such resource", 405: "method not allowed"}
    message = messages.get(exc.status_code, str(exc.detail))
    response = renderer_for(request.url.path)(request, exc.status_code, message, None)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """A body that does not fit its model: a 400 that names each field, as every other
    invalid input is."""
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    failed = errors.ValidationFailed(describe(exc.errors()))
    return renderer_for(request.url.path)(request, 400, failed.message, failed)


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database out of reach (or a lock or statement timeout) is 503 with `Retry-After`,
    in the error shape of the path's API; any other database error is unexpected."""
    answer = runtime.unavailable(exc)
    if answer is None:
        raise exc  # on to `_unexpected`: a 500, logged
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    logger.warning(
        "%s %s: the database could not serve it: %s", request.method, request.url.path, reason
    )
    return renderer_for(request.url.path)(request, status_for(answer), answer.message, answer)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return renderer_for(request.url.path)(request, 500, "internal error", None)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.JobyardError, _jobyard_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for kind in runtime.DATABASE_ERRORS:
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(Exception, _unexpected)
