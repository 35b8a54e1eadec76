"""BMC's job run answers and errors, and the filters a list reads, as `/openapi.json` declares
them.

`present.job_run` leaves times as datetimes for the writer (Rails' XML types them), so it is
not typed with `BmcJobRun`; the e2e tests hold the two together. XML answers carry the same
members, dasherised (`automation-id`), with Rails' `type=` attributes and `nil="true"`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from jobyard.api.openapi import WHY, schema_ref


class BmcStepRequest(TypedDict):
    aasm_state: Any
    id: Any
    name: Any


class BmcStep(TypedDict):
    """The `step` object of the job's context: these members first (null when not given),
    then any others."""

    aasm_state: Any
    id: Any
    name: Any
    request: BmcStepRequest | None


class BmcJobRun(TypedDict):
    automation_id: int
    created_at: str
    finished_at: str | None
    id: int
    job_type: Literal["automation", "notification"]
    process_id: int
    results_path: str
    run_key: int
    started_at: str
    status: Literal["Running", "Complete", "Problem", "Cancelled"]
    stderr: str | None
    stdout: str | None
    updated_at: str
    step: BmcStep | None


class BmcError(TypedDict):
    """Every error: `{"error": ...}` in JSON, `<errors><error>...</error></errors>` in XML."""

    error: str


# Filters -------------------------------------------------------------------------------------

FILTER_HELP = {
    "currently_running": "`true` or `false`",
    "run_key": "The run key (an integer)",
    "status": "`Running`, `Complete`, `Problem` or `Cancelled` (any case)",
    "job_type": "`automation` or `notification`",
    "process_id": "The process id (an integer)",
    "automation_id": "The package (an integer)",
    "user_id": "Who launched the job (an integer)",
    "step_id": "The `step` id of the job's context (an integer)",
}
Value = str | int | float | bool | None


class BmcFilterValues(BaseModel):
    """Job run filters; all must hold, and an empty or null value is no filter."""

    model_config = ConfigDict(extra="forbid")

    currently_running: Value = Field(default=None, description=FILTER_HELP["currently_running"])
    run_key: Value = Field(default=None, description=FILTER_HELP["run_key"])
    status: Value = Field(default=None, description=FILTER_HELP["status"])
    job_type: Value = Field(default=None, description=FILTER_HELP["job_type"])
    process_id: Value = Field(default=None, description=FILTER_HELP["process_id"])
    automation_id: Value = Field(default=None, description=FILTER_HELP["automation_id"])
    user_id: Value = Field(default=None, description=FILTER_HELP["user_id"])
    step_id: Value = Field(default=None, description=FILTER_HELP["step_id"])


class BmcFilters(BaseModel):
    """A GET body in JSON. Other members are parameters, as Rails merges a JSON body into its
    `params`: one that names a filter is that filter, any other is ignored."""

    model_config = ConfigDict(extra="allow")

    filters: BmcFilterValues | None = None


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description}


FORMAT = _query("format", "`json` or `xml` (after a path suffix; before `Accept`); else 406")
FORMAT_HEADERS = [
    {
        **_header("Accept", "`application/xml` or `text/xml` for XML (the highest `q`); else JSON"),
        "schema": {"type": "string"},
    },
    {
        **_header("If-None-Match", "An `ETag` of an earlier answer: an empty 304 if unchanged"),
        "schema": {"type": "string"},
    },
]
FILTER_PARAMETERS = [
    *(_query(f"filters[{name}]", text) for name, text in FILTER_HELP.items()),
    *(_query(name, f"`filters[{name}]`, unbracketed") for name in FILTER_HELP),
]
# The list reads its filters by hand (`filters.query_filters`, `filters.body_filters`): the
# bracketed names, and a GET body in JSON or XML.
XML_FILTERS = {**schema_ref(BmcFilterValues), "xml": {"name": "filters"}}
LIST_DECLARED: dict[str, Any] = {
    "parameters": [FORMAT, *FILTER_PARAMETERS, *FORMAT_HEADERS],
    "requestBody": {
        "required": False,
        "description": "Filters in a GET body: JSON, or XML `<filters><status>…</status>"
        "</filters>` (dashed names are read as underscores)",
        "content": {
            "application/json": {"schema": schema_ref(BmcFilters)},
            "application/xml": {"schema": XML_FILTERS},
            "text/xml": {"schema": XML_FILTERS},
        },
    },
}
SHOW_DECLARED: dict[str, Any] = {"parameters": [FORMAT, *FORMAT_HEADERS]}


# Answers -------------------------------------------------------------------------------------

XML = "application/xml"
RUN_REF = {"$ref": "#/components/schemas/BmcJobRun"}
NOT_MODIFIED = {"description": "`If-None-Match` names the answer's `ETag`: nothing to send"}
LIST_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The newest matching runs (500 at most), in id order",
        "content": {
            XML: {
                "schema": {
                    "type": "array",
                    "items": {**RUN_REF, "xml": {"name": "job-run"}},
                    "xml": {"name": "job-runs", "wrapped": True},
                }
            }
        },
    },
    304: NOT_MODIFIED,
}
SHOW_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The job run",
        "content": {XML: {"schema": {**RUN_REF, "xml": {"name": "job-run"}}}},
    },
    304: NOT_MODIFIED,
}
WHY_HERE = WHY | {
    403: "No token, an invalid one, or credentials that may not do this (never 401).",
    404: "No such job run, or (a list) none matches.",
    406: "A format other than `json` or `xml`.",
    413: "The GET body is too large.",
}


def failures(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Error answers in the format asked for (JSON unless XML was asked)."""
    ref = schema_ref(BmcError)
    content = {
        "application/json": {"schema": ref},
        XML: {"schema": {**ref, "xml": {"name": "errors"}}},
    }
    return {code: {"description": WHY_HERE[code], "content": content} for code in codes}
