"""What `/openapi.json` says beyond each route's own declarations: how a caller
authenticates, the problem+json answers of errors, and stable operation ids."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from jobyard.api.auth import CUSTOMER_HEADER_DECLARED, authenticate
from jobyard.api.native.answers import Problem
from jobyard.api.negotiation import NATIVE_PREFIX, XML_TYPES
from jobyard.api.render import PROBLEM_TYPE

JSON = dict[str, Any]

DESCRIPTION = """\
jobyard's native API follows CDRouter's conventions (ids are digit strings, answers carry
`timestamp` and `data`, lists `links`); the SAYMON, BMC and BigChange dialects answer as those
products do, errors included (each operation declares its own). Every native error is
`application/problem+json` (RFC 9457, with CDRouter's `error`). Native answers are XML instead
when `Accept` names `application/xml` first.
"""

SECURITY_SCHEMES: JSON = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `Authorization: Bearer <token>`.",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "A login and its password, or a token as the password.",
    },
    "token": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "An API token in the query (CDRouter, SAYMON).",
    },
    "apiToken": {
        "type": "apiKey",
        "in": "query",
        "name": "api-token",
        "description": "An API token in the query (SAYMON's spelling).",
    },
}
ANY_CREDENTIALS: list[JSON] = [{name: []} for name in SECURITY_SCHEMES]
PUBLIC: JSON = {"security": []}  # an operation's `openapi_extra` when it needs no credentials

WHY = {
    400: "The request is not valid; the message names what and why.",
    401: "No credentials, or credentials that are not valid.",
    403: "The credentials are valid but may not do this.",
    404: "No such object (or one of another customer).",
    409: "The object's state does not allow it.",
    413: "The request body is too large.",
    422: "The request is well-formed but breaks a rule.",
    429: "Too many failed logins; try later (`Retry-After`).",
    503: "The database cannot answer now; try later (`Retry-After`).",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*codes: int) -> dict[int | str, JSON]:
    """The error answers an operation can give, each in the problem+json shape."""
    return {
        code: {"description": WHY[code], "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}}}
        for code in codes
    }


# An operation that answers nothing on success (a delete, a state change).
NO_CONTENT: dict[int | str, JSON] = {204: {"description": "Done; nothing to answer"}}

# What every authenticated operation can answer, whatever it does.
AUTHENTICATED = problems(400, 401, 403, 404, 503)
# ... and what one that changes something can answer too.
WRITING = problems(400, 401, 403, 404, 409, 413, 422, 503)


REF_TEMPLATE = "#/components/schemas/{model}"
# Models that operations declare by hand (`request_body`): `build` adds them to components.
_DECLARED: dict[str, Any] = {}


def schema_ref(model: Any) -> JSON:
    """A reference to `model` (a Pydantic model or a TypedDict) in components, which `build`
    adds there (for what an operation declares by hand)."""
    _DECLARED[model.__name__] = model
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def request_body(
    *models: type[BaseModel],
    required: bool = False,
    media_types: tuple[str, ...] = ("application/json",),
) -> JSON:
    """`openapi_extra` for an operation that reads its body by hand: one of `models`, in
    any of `media_types`."""
    refs = [schema_ref(m) for m in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    content = {media_type: {"schema": schema} for media_type in media_types}
    return {"requestBody": {"required": required, "content": content}}


def operation_id(route: APIRoute) -> str:
    """The route's name, after its tag for the dialects (whose names repeat the native ones)."""
    tag = str(route.tags[0]) if route.tags else ""
    return f"{tag}_{route.name}" if tag.startswith("dialect:") else route.name


def build(app: FastAPI) -> JSON:
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=DESCRIPTION,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in [Problem, *_DECLARED.values()]:
        schema = TypeAdapter(model).json_schema(ref_template=REF_TEMPLATE)
        for name, nested in schema.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        schemas.setdefault(model.__name__, schema)
    components["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = ANY_CREDENTIALS
    _declare_customer_header(app, document)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            _drop_unused_validation_error(operation)
            if path.startswith(NATIVE_PREFIX):
                _also_as_xml(operation)
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def _declare_customer_header(app: FastAPI, document: JSON) -> None:
    """Every operation that authenticates takes `Customer-Id`, unless it declares its own."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if not _authenticates(route.dependant):
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            parameters = operation.setdefault("parameters", [])
            named = {(p["name"].lower(), p["in"]) for p in parameters}
            if ("customer-id", "header") not in named:
                parameters.append(dict(CUSTOMER_HEADER_DECLARED))


def _authenticates(dependant: Dependant) -> bool:
    return any(d.call is authenticate or _authenticates(d) for d in dependant.dependencies)


def _without_null(schema: JSON) -> JSON:
    """A parameter is left out or given: `str | None` in Python is a string on the wire."""
    choices = schema.get("anyOf", [])
    kept = [c for c in choices if c != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(choices):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest}


def _also_as_xml(operation: JSON) -> None:
    """A native answer, error or not, is XML when the client asks for it (`negotiation.py`)."""
    for answer in operation.get("responses", {}).values():
        content = answer.get("content", {})
        for media_type in ("application/json", PROBLEM_TYPE):
            if media_type in content:
                content.setdefault(XML_TYPES[0], content[media_type])


def _drop_unused_validation_error(operation: JSON) -> None:
    """FastAPI adds a 422 `HTTPValidationError` to operations with parameters; jobyard never
    answers it (bad input is a 400 problem, see `errors.py`)."""
    answer = operation.get("responses", {}).get("422")
    if answer and "HTTPValidationError" in str(answer):
        del operation["responses"]["422"]


def install(app: FastAPI) -> None:
    """`/openapi.json` built once, on first request, by `build`."""

    def openapi() -> JSON:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
