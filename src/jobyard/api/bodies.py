"""Reading request bodies: size-limited, strict JSON, validated into Pydantic schemas.

Routes take their body as a typed parameter (FastAPI validates it and documents its model);
`ReadsJsonBody` has `read_json` read it first, so every body meets the same size cap, JSON
strictness, depth bound and NUL check, with the same messages, whichever route it goes to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from jobyard import jsontext
from jobyard.errors import PayloadTooLarge, ValidationFailed

SchemaT = TypeVar("SchemaT", bound=BaseModel)
MAX_JSON_DEPTH = 64  # levels of arrays and objects in a request body


async def read_bytes(request: Request, *, bulk: bool = False) -> bytes:
    """The body, refused (413) past the size cap: a bulk launch's cap, or every other's."""
    settings = request.app.state.settings
    limit: int = settings.max_bulk_body_bytes if bulk else settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return body


async def read_json(request: Request, *, empty: Any = None, bulk: bool = False) -> Any:
    """The body as JSON; an empty body gives `empty` (bulk deletes send none)."""
    body = await read_bytes(request, bulk=bulk)
    if not body.strip():
        return empty
    try:
        data = jsontext.loads(body)
    except (ValueError, RecursionError) as exc:  # also too deep, or too many digits
        raise ValidationFailed(f"malformed JSON body: {str(exc)[:200]}") from None
    # Every stored JSON value (results, context, attributes, testvars, ...) comes this way:
    # a bound on its depth keeps each later read, render and comparison of it cheap.
    if jsontext.nested_deeper_than(body, MAX_JSON_DEPTH):
        raise ValidationFailed(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    # JSON holds a NUL or a lone surrogate only escaped (both parsers refuse raw control
    # characters in strings, and a raw surrogate is not UTF-8), so a body without such an
    # escape needs no walk through all it holds.
    if b"\\u0000" in body or _SURROGATE_ESCAPE.search(body):
        _refuse_unstorable(data, "body")
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_unstorable(value: Any, where: str) -> None:
    """No stored text may hold U+0000 (PostgreSQL cannot keep it and no argv can carry it)
    or half a surrogate pair (PostgreSQL refuses it, and it is no character)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValidationFailed(
                f"{where}: NUL characters and unpaired surrogates are not allowed"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key, where)
            _refuse_unstorable(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable(item, f"{where}[{index}]")


NOT_AN_OBJECT = "invalid request body: expected a JSON object"
# Pydantic's error types for a body that is not an object at all.
_WHOLE_BODY_WRONG = {"model_attributes_type", "model_type", "dict_type", "missing"}


def describe(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic's complaints in one line that names each offending field."""
    parts = []
    for error in list(errors)[:5]:
        loc = tuple(error["loc"])
        if loc[:1] == ("body",):  # FastAPI's prefix for the body's own fields
            loc = loc[1:]
            if not loc and error["type"] in _WHOLE_BODY_WRONG:
                return NOT_AN_OBJECT
        where = ".".join(str(p) for p in loc) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "invalid request body: " + "; ".join(parts)


def validate(schema: type[SchemaT], data: Any) -> SchemaT:
    if not isinstance(data, dict):
        raise ValidationFailed(NOT_AN_OBJECT)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc.errors())) from None


async def parse(request: Request, schema: type[SchemaT]) -> SchemaT:
    return validate(schema, await read_json(request, empty={}))


JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class _ReadBody(Request):
    """A request whose body `read_json` has read: FastAPI takes it from here as JSON, whatever
    Content-Type the client sent (`curl -d` sends a form type; the API reads only JSON)."""

    def __init__(self, request: Request, data: Any) -> None:
        super().__init__(_as_json(request.scope), request.receive)
        self._data = data

    async def body(self) -> bytes:
        return b"{}"  # not empty: FastAPI goes on to `json()`

    async def json(self) -> Any:
        return self._data


def _as_json(scope: Scope) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    return {**scope, "headers": [*headers, JSON_CONTENT_TYPE]}


class ReadsJsonBody(APIRoute):
    """A route whose typed body parameter is read by `read_json` (an empty body is `{}`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def read_then_handle(request: Request) -> Response:
            return await handle(_ReadBody(request, await read_json(request, empty={})))

        return read_then_handle
