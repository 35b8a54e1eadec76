"""The OpenAPI document the fuzz run works from: the app's own, enriched with what its handlers
read by hand (request bodies from our Pydantic models, the documented query parameters and
headers, path ids as free strings) and the Bearer security scheme."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from jobyard.api.native import schemas

JSON = dict[str, Any]


# Bodies the dialects read by hand, written down as their module docstrings describe them.
# Unknown members are allowed (BigChange ignores them; SAYMON and BMC take any object).


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class BigChangeJobIn(Loose):
    type_id: int | None = Field(default=None, alias="typeId")
    description: str | None = None
    reference: str | None = None
    contact_id: int | None = Field(default=None, alias="contactId")
    planned_start_at: str | None = Field(default=None, alias="plannedStartAt")


class BigChangeResultIn(Loose):
    status: str
    result: str | None = None
    status_modified_at: str | None = Field(default=None, alias="statusModifiedAt")


class BigChangeStartIn(Loose):
    comment: str | None = None
    status_modified_at: str | None = Field(default=None, alias="statusModifiedAt")


class BigChangeCancelIn(Loose):
    reason: str | None = None


class SaymonArgumentsIn(RootModel[dict[str, str]]):
    """An operation's input arguments: a JSON object of strings."""


class AnyObjectIn(RootModel[dict[str, Any]]):
    """A custom result: any JSON object."""


class BmcFiltersIn(Loose):
    filters: dict[str, Any] | None = None


class CredentialsIn(Loose):
    username: str
    password: str | None = None


@dataclass(frozen=True)
class Body:
    """What an operation reads as its body: a model, and why it is not one of the API's own
    schemas when it is not."""

    model: type[BaseModel]
    why: str = ""


DIALECT = "the dialect reads this body by hand; the model follows its module's docstring"

# (method, path) → the body the handler reads. Every operation that reads a body must be here
# (test_every_body_reading_operation_has_a_model checks it).
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/api/v1/jobs/"): Body(schemas.JobLaunchIn),  # plus BulkLaunchIn, below
    ("PATCH", "/api/v1/jobs/{job_id}/"): Body(schemas.JobEditIn),
    ("POST", "/api/v1/jobs/{job_id}/results/"): Body(AnyObjectIn, "a result is any JSON object"),
    ("PATCH", "/api/v1/jobs/{job_id}/results/"): Body(AnyObjectIn, "a result is any JSON object"),
    ("POST", "/api/v1/jobs/{job_id}/outcome/"): Body(schemas.OutcomeIn),
    ("PUT", "/api/v1/jobs/{job_id}/outcome/"): Body(schemas.OutcomeIn),
    ("POST", "/api/v1/packages/"): Body(schemas.PackageIn),
    ("PATCH", "/api/v1/packages/{object_id}/"): Body(schemas.PackageIn),
    ("POST", "/api/v1/devices/"): Body(schemas.DeviceIn),
    ("PATCH", "/api/v1/devices/{object_id}/"): Body(schemas.DeviceIn),
    ("POST", "/api/v1/configs/"): Body(schemas.ConfigIn),
    ("PATCH", "/api/v1/configs/{object_id}/"): Body(schemas.ConfigIn),
    ("POST", "/api/v1/users/"): Body(schemas.UserIn),
    ("PATCH", "/api/v1/users/{user_id}/"): Body(schemas.UserEditIn),
    ("POST", "/api/v1/tokens/"): Body(schemas.TokenIn),
    ("POST", "/api/v1/tenants/"): Body(schemas.TenantIn),
    ("POST", "/authenticate"): Body(CredentialsIn, "CDRouter's login reads a form or JSON"),
    ("POST", "/v1/jobs"): Body(BigChangeJobIn, DIALECT),
    ("PUT", "/v1/jobs/{job_id}/result"): Body(BigChangeResultIn, DIALECT),
    ("PUT", "/v1/jobs/{job_id}/start"): Body(BigChangeStartIn, DIALECT),
    ("PUT", "/v1/jobs/{job_id}/cancel"): Body(BigChangeCancelIn, DIALECT),
    ("PATCH", "/node/api/jobs/{job_id}/results"): Body(AnyObjectIn, DIALECT),
    ("POST", "/node/api/objects/{obj_id}/operations/{op_id}/execute"): Body(
        SaymonArgumentsIn, DIALECT
    ),
    ("GET", "/v1/job_runs"): Body(BmcFiltersIn, DIALECT),
    ("GET", "/v1/job_runs/"): Body(BmcFiltersIn, DIALECT),
    ("GET", "/v1/job_runs.{fmt}"): Body(BmcFiltersIn, DIALECT),
}
# `POST jobs/` takes several bodies, by its query (`bulk=launch`, `bulk=delete`, `process=`).
EXTRA_BODIES: dict[tuple[str, str], list[type[BaseModel]]] = {
    ("POST", "/api/v1/jobs/"): [schemas.BulkLaunchIn, schemas.BulkDeleteIn],
}


# Parameter values -------------------------------------------------------------------------

# Digits as `str.isdigit()` sees them: ASCII, superscripts, Arabic-Indic and fullwidth.
ODD_DIGITS = "0-9\u00b2\u00b3\u00b9\u0660-\u0669\uff10-\uff19"


ANYTHING = "^[\\s\\S]*$"
# Header values are latin-1 on the wire; schemathesis drops a whole set of headers when one
# value is not, so header values are drawn from what can be sent.
SENDABLE = "^[ -~\u00a0-\u00ff]*$"
HEADER_DIGITS = "0-9\u00b2\u00b3\u00b9"


def _string(*patterns: str, enum: list[str] | None = None, free: str = ANYTHING) -> JSON:
    """A string that is sometimes well-formed (a pattern or a known value), sometimes anything."""
    choices: list[JSON] = [{"type": "string", "pattern": p} for p in patterns]
    if enum:
        choices.append({"type": "string", "enum": enum})
    # `free` is a pattern, not a bare {"type": "string"}: hypothesis-jsonschema would see
    # that the bare one holds every other choice and keep only it.
    choices.append({"type": "string", "pattern": free})
    return {"anyOf": choices}


ID = _string("^[1-9][0-9]?$", f"^[{ODD_DIGITS}]{{1,25}}$", "^-?[0-9]{19,40}$")
NUMBER = _string("^[0-9]{1,3}$", f"^[{ODD_DIGITS}]{{1,25}}$", "^-?[0-9]{19,40}$", enum=["none"])
FLAG = _string(enum=["true", "false", "1", "0", "yes", "no"])
FIELDS = "id|status|name|tags|options\\.tags|package_name|created|run_at|priority|login|role"
OPS = "=|!=|<|<=|>|>=|~|!~|~\\*|!~\\*|@>|<@|&&"
FILTER = _string(f"^({FIELDS})({OPS})[a-z0-9{{}},:.²-]{{0,12}}$")
SORT = _string(f"^[+-]?({FIELDS})(,[+-]?({FIELDS}))?$")


def _query(name: str, schema: JSON, *, array: bool = False) -> JSON:
    if array:
        schema = {"type": "array", "items": schema, "maxItems": 4}
    return {"name": name, "in": "query", "required": False, "schema": schema, "explode": True}


def _header(name: str, schema: JSON, *, required: bool = False) -> JSON:
    return {"name": name, "in": "header", "required": required, "schema": schema}


LISTING = [
    _query("filter", FILTER, array=True),
    _query("type", _string(enum=["inter", "union"])),
    _query("sort", SORT),
    _query("page", NUMBER),
    _query("limit", NUMBER),
    _query("detailed", FLAG),
]
CUSTOMER = _header(
    "Customer-Id", _string(f"^[{HEADER_DIGITS}]{{1,25}}$", enum=["1", "2"], free=SENDABLE)
)
# Event streams follow a live job; the fuzz run sends them with a short timeout.
ACCEPT = _header(
    "Accept",
    {
        "type": "string",
        "enum": ["application/json", "application/xml", "text/plain", "text/event-stream"],
    },
)
LOG = [
    _query("offset", NUMBER),
    _query("attempt", NUMBER),
    _query("stream", _string(enum=["stdout", "stderr"])),
    _header("Last-Event-ID", _string(f"^[{HEADER_DIGITS}]{{1,25}}$", free=SENDABLE)),
]
LAUNCH = [
    _query("bulk", _string(enum=["launch", "delete", "edit"])),
    _query("process", _string(enum=["interfaces"])),
    _query("filter", FILTER, array=True),
    _query("type", _string(enum=["inter", "union"])),
    _query("all", FLAG),
]
BIGCHANGE_PAGE = [_query("pageNumber", NUMBER), _query("pageSize", NUMBER)]
BIGCHANGE_SORT = [
    _query("sortBy", _string(enum=["id", "createdAt", "plannedStartAt", "actualStartAt"])),
    _query("direction", _string(enum=["ascending", "descending"])),
]
BIGCHANGE_LIST = [
    *BIGCHANGE_PAGE,
    *BIGCHANGE_SORT,
    _query("status", _string(enum=["new", "scheduled", "started", "completedOk"]), array=True),
    _query("typeId", ID),
]
BMC_FILTER_NAMES = (
    "currently_running",
    "run_key",
    "status",
    "job_type",
    "process_id",
    "automation_id",
    "user_id",
    "step_id",
)
BMC = [
    _query("format", _string(enum=["json", "xml"])),
    *[_query(name, _string(f"^[{ODD_DIGITS}]{{1,25}}$")) for name in BMC_FILTER_NAMES],
    *[_query(f"filters[{name}]", NUMBER) for name in ("status", "user_id", "step_id")],
]

# (method, path) → the parameters its handler reads, as docs/api.md and docs/dialects.md
# document them.
PARAMETERS: dict[tuple[str, str], list[JSON]] = {
    ("GET", "/api/v1/jobs/"): LISTING,
    ("POST", "/api/v1/jobs/"): LAUNCH,
    ("GET", "/api/v1/jobs/{job_id}/log/"): LOG,
    ("GET", "/api/v1/workers/"): [_query("all", FLAG)],
    ("POST", "/authenticate"): [_query("username", _string()), _query("password", _string())],
    ("GET", "/v1/jobs"): BIGCHANGE_LIST,
    ("GET", "/v1/jobs/{job_id}/status/history"): [*BIGCHANGE_PAGE, *BIGCHANGE_SORT],
}
for _name in ("packages", "devices", "configs", "runs", "users", "tokens", "events"):
    PARAMETERS[("GET", f"/api/v1/{_name}/")] = LISTING
for _path in ("/v1/job_runs", "/v1/job_runs/", "/v1/job_runs.{fmt}"):
    PARAMETERS[("GET", _path)] = BMC
# Path parameters with a shape of their own (the rest are ids).
PATH_VALUES: dict[str, JSON] = {
    "fmt": _string(enum=["json", "xml"]),
    "ident": _string("^[1-9][0-9]?(\\.(json|xml))?$", f"^[{ODD_DIGITS}]{{1,25}}$"),
}


def headers_for(path: str) -> list[JSON]:
    """`Customer-Id` everywhere (required by BigChange); `Accept` on the native API."""
    if path.startswith("/v1/jobs"):
        return [{**CUSTOMER, "required": True}]
    found = [CUSTOMER]
    if path.startswith("/api/v1/"):
        found.append(ACCEPT)
    return found


# Building the document ----------------------------------------------------------------------

REF_TEMPLATE = "#/components/schemas/{model}"


def model_schema(model: type[BaseModel], components: JSON) -> JSON:
    """The model's JSON schema with its `$defs` moved into `components`."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    components.update(schema.pop("$defs", {}))
    return schema


def request_body(key: tuple[str, str], components: JSON) -> JSON:
    chosen = [BODIES[key].model, *EXTRA_BODIES.get(key, [])]
    found = [model_schema(m, components) for m in chosen]
    schema = found[0] if len(found) == 1 else {"anyOf": found}
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def path_parameters(path: str) -> list[JSON]:
    names = re.findall(r"{(\w+)}", path)
    return [
        {"name": n, "in": "path", "required": True, "schema": PATH_VALUES.get(n, ID)} for n in names
    ]


def enrich(openapi: JSON) -> JSON:
    """A copy of the app's OpenAPI document, with what the handlers read spelled out."""
    spec = copy.deepcopy(openapi)
    components = spec.setdefault("components", {})
    schemas_ = components.setdefault("schemas", {})
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    spec["security"] = [{"bearer": []}]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            operation["operationId"] = f"{method}_{path}"  # FastAPI repeats multi-method ones
            operation["parameters"] = [
                *path_parameters(path),
                *PARAMETERS.get(key, []),
                *headers_for(path),
            ]
            if key in BODIES:
                operation["requestBody"] = request_body(key, schemas_)
    return spec
