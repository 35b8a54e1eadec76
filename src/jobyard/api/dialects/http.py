"""HTTP plumbing the vendor dialects share, so each dialect keeps only its vendor's mapping:

- `call`: a service call off the event loop, with the app's runtime (`read_by_key` for a
  read of a row or two, which may run on it);
- `required_customer` and `bearer_token`: the `Customer-Id` header a surface insists on, and
  credentials limited to a Bearer token;
- content negotiation in Rails' way (a `.json`/`.xml` suffix, `?format=`, then `Accept` by
  quality) and the JSON or XML body in the format chosen;
- `tagged`: an answer with an ETag (the quoted MD5 of its body, as Rails makes it) that is an
  empty 304 when `If-None-Match` names it;
- `error_tail`: the headers every error answer carries (`WWW-Authenticate` on a 401 with the
  dialect's challenge, `Retry-After` when the error says when to try again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Concatenate, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from jobyard import errors, jsontext
from jobyard.api import xml
from jobyard.api.calls import quick_read, runtime_of
from jobyard.domain.numbers import ascii_int
from jobyard.services.runtime import Runtime

P = ParamSpec("P")
T = TypeVar("T")


async def call(
    request: Request,
    service: Callable[Concatenate[Runtime, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`service(runtime, ...)` in the threadpool: service calls block on the database."""
    return await run_in_threadpool(service, runtime_of(request), *args, **kwargs)


async def read_by_key(
    request: Request,
    service: Callable[Concatenate[Runtime, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`service(runtime, ...)`, a read of a row or two by key: on the event loop where the
    database answers it at once (see `calls.quick_read`), else in the threadpool."""
    rt = runtime_of(request)
    return await quick_read(rt, lambda: service(rt, *args, **kwargs))


# Credentials -----------------------------------------------------------------------------


def required_customer(request: Request) -> None:
    """Refuse a request without a `Customer-Id` header that is a number (400); which customer
    it names is the shared authentication's to check."""
    raw = request.headers.get("customer-id")
    if raw is None or not raw.strip():
        raise errors.ValidationFailed("the Customer-Id header is required", field="Customer-Id")
    if ascii_int(raw.strip()) is None:
        raise errors.ValidationFailed(
            f"invalid Customer-Id {raw!r}: expected a customer number", field="Customer-Id"
        )


def bearer_token(request: Request) -> None:
    """Refuse credentials other than `Authorization: Bearer <token>` (401)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("a Bearer token is required")


# Content negotiation ---------------------------------------------------------------------


class Format(StrEnum):
    JSON = "json"
    XML = "xml"


ACCEPTED_TYPES = {
    "application/json": Format.JSON,
    "text/json": Format.JSON,
    "application/xml": Format.XML,
    "text/xml": Format.XML,
    "application/*": Format.JSON,
    "*/*": Format.JSON,
}
MEDIA_TYPES = {
    Format.JSON: "application/json;charset=utf-8",
    Format.XML: "application/xml;charset=utf-8",
}


def _explicit_format(request: Request) -> str | None:
    """The format named by the last path element's suffix, else by `?format=`."""
    last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if "." in last:
        return last.rsplit(".", 1)[1].lower()
    named = request.query_params.get("format")
    return named.lower() if named else None


def _q(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _accepted_format(header: str) -> Format:
    """The highest `q` wins, the first listed on a tie; JSON when nothing known is listed."""
    best: tuple[float, Format] = (0.0, Format.JSON)
    for item in header.split(","):
        media, *parameters = item.split(";")
        found = ACCEPTED_TYPES.get(media.strip().lower())
        quality = _q(parameters)
        if found is not None and quality > best[0]:
            best = (quality, found)
    return best[1]


def requested_format(request: Request) -> Format:
    """What the answer is written in; an unknown explicit format falls back to `Accept`."""
    explicit = _explicit_format(request)
    if explicit in {Format.JSON.value, Format.XML.value}:
        return Format(explicit)
    return _accepted_format(request.headers.get("accept", ""))


def checked_format(request: Request) -> Format:
    """`requested_format`, with an unknown explicit format refused (406, Rails' UnknownFormat)."""
    explicit = _explicit_format(request)
    if explicit is not None and explicit not in {Format.JSON.value, Format.XML.value}:
        raise HTTPException(406, f'unsupported format "{explicit[:20]}": use json or xml')
    return requested_format(request)


def encode(
    data: Any, fmt: Format, root: str, *, format_datetime: Callable[[datetime], str]
) -> bytes:
    """The answer's body in `fmt`; a stored value of any depth or shape renders (no recursion)."""
    if fmt is Format.XML:
        return xml.to_xml(data, root, format_datetime=format_datetime).encode("utf-8")

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return format_datetime(value)
        raise TypeError(f"cannot render {type(value).__name__} as JSON")

    return jsontext.dumps_bytes(data, default=default)


# Answers ---------------------------------------------------------------------------------


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def tagged(
    request: Request, body: bytes, *, media_type: str, headers: Mapping[str, str]
) -> Response:
    """`body` with its ETag and `headers`; an empty 304 when `If-None-Match` names the tag."""
    etag = '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'
    all_headers = {"ETag": etag, **headers}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=all_headers)
    return Response(body, media_type=media_type, headers=all_headers)


def status_phrase(status: int) -> str:
    """The status's reason phrase; "Error" for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_tail(
    response: Response, exc: errors.JobyardError | None, *, challenge: str | None = None
) -> Response:
    """The headers of an error answer: the dialect's `challenge` on a 401, and `Retry-After`
    when the error says when to try again."""
    if challenge is not None and response.status_code == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = challenge
    if isinstance(exc, errors.TryLater):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
