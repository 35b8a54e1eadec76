"""The shapes of the native API's answers, as `/openapi.json` documents them.

`present.py` builds these; tests/api/test_unset_values.py checks every state of every kind
against them, and the fuzz run every answer it gets. Ids are digit strings. Every
key is always present; a value not set yet is null, a list is [] (docs/api.md, "Conventions"),
except where the cdrouter client reads a field and refuses null: there CDRouter's "0" or "".
"""

from __future__ import annotations

import functools
import re
from typing import Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from jobyard.domain.models import PackageKind
from jobyard.domain.outcomes import OutcomeStatus
from jobyard.domain.run_end import Backoff
from jobyard.domain.schedules import FireOutcome, Misfire
from jobyard.domain.statuses import JobStatus, RunStatus
from jobyard.domain.webhooks import DeliveryStatus, WebhookEvent


def _name_of(kind: Any) -> str:
    """`JobOut` for JobOut, `JobOutList` for list[JobOut], `AOrB` for A | B."""
    arguments: tuple[Any, ...] = getattr(kind, "__args__", ())
    if getattr(kind, "__origin__", None) is list:
        return _name_of(arguments[0]) + "List"
    if arguments:
        return "Or".join(_name_of(a) for a in arguments)
    return str(getattr(kind, "__name__", kind))


def _short(name: str) -> str:
    """`JobOutList` → `JobList` (the answer's name says it is out already)."""
    return re.sub(r"Out(?=[A-Z]|$)", "", name)


class Answer(BaseModel):
    timestamp: str = Field(description="RFC 3339 time of the answer")


class Links(TypedDict):
    """Paging of a list answer; `next`/`prev` are left out where there is none."""

    first: int
    last: int
    current: int
    total: int
    limit: int
    next: NotRequired[int]
    prev: NotRequired[int]


class PageAnswer(Answer):
    links: Links


@functools.cache
def one(kind: Any) -> type[BaseModel]:
    """The answer that holds one `kind` (an object, or a list that is not paged):
    `JobOutAnswer` for `JobOut`."""
    name = _short(_name_of(kind)) + "Answer"
    model: type[BaseModel] = create_model(name, __base__=Answer, data=(kind, ...))
    return model


@functools.cache
def page(kind: Any) -> type[BaseModel]:
    """One page of a list of `kind`, with its links: `JobPage` for `JobOut`."""
    name = _short(_name_of(kind)) + "Page"
    model: type[BaseModel] = create_model(name, __base__=PageAnswer, data=(list[kind], ...))
    return model


class Problem(BaseModel):
    """Every error: CDRouter's `error` with the RFC 9457 (problem details) members."""

    model_config = ConfigDict(title="Problem")

    timestamp: str
    error: str = Field(description="the message (CDRouter's member; the same as `detail`)")
    type: str
    title: str
    status: int
    detail: str
    instance: str = Field(default="", description="the path that was asked for")
    errors: dict[str, list[str]] = Field(
        default_factory=dict, description="messages by field, when a field was at fault"
    )
    not_found: list[str] = Field(
        default_factory=list, description="ids of referenced objects that do not exist"
    )


class InterfaceOut(TypedDict):
    name: str
    value: str
    is_wireless: bool
    is_ics: bool


class TestvarOut(TypedDict):
    group: str
    name: str
    value: str
    default: str
    isdefault: bool
    line: int
    action: str | None


class OptionsOut(TypedDict):
    tags: list[str]
    skip_tests: list[str]
    begin_at: str
    end_at: str
    testvars: list[TestvarOut]
    extra_cli_args: str


class OutcomeOut(TypedDict):
    """Both null until an outcome is set."""

    status: OutcomeStatus | None
    result: str | None


class JobOut(TypedDict):
    id: str
    active: bool
    status: JobStatus
    options: OptionsOut
    package_id: str
    package_name: str
    device_id: str
    device_name: str
    config_id: str
    config_name: str
    result_id: str | None
    user_id: str
    created: str
    updated: str
    automatic: bool
    run_at: str
    interfaces: list[InterfaceOut]
    interface_names: list[str]
    uses_wireless: bool
    uses_ics: bool
    ics_interface_name: str | None
    kind: PackageKind
    priority: int
    attempts: int
    cancel_requested: bool
    context: dict[str, Any]
    started: str | None
    finished: str | None
    exit_code: int | None
    outcome: OutcomeOut


class ResultOut(TypedDict):
    id: str
    job_id: str
    payload: dict[str, Any]
    by: str | None
    at: str


class PackageOut(TypedDict):
    id: str
    name: str
    description: str
    kind: PackageKind
    command: list[str]
    env: dict[str, str]
    timeout: float
    max_attempts: int
    retry_delay: float
    rerun_lost: bool
    retry_backoff: Backoff
    retry_delay_max: float
    retry_jitter: float
    keep_days: int | None
    keep_last: int | None
    output_days: int | None
    concurrency: int
    config_id: str
    device_id: str
    positive_results: list[str]
    negative_results: list[str] | None
    tags: list[str]
    note: str
    sandbox: dict[str, Any]
    allowed_args: list[str]
    user_id: str
    created: str
    updated: str
    locked: bool
    test_count: str
    testlist: list[str]
    extra_cli_args: str
    agent_id: str
    use_as_testlist: bool


class ScheduleOut(TypedDict):
    """A schedule; `next_run` is null while paused, `last_*` until its first fire."""

    id: str
    name: str
    description: str
    package_id: str
    device_id: str
    config_id: str
    options: OptionsOut
    context: dict[str, Any]
    priority: int
    cron: str | None
    interval: int | None
    timezone: str
    misfire: Misfire
    skip_if_running: bool
    paused: bool
    next_run: str | None
    last_fire_time: str | None
    last_job_id: str | None
    user_id: str
    created: str
    updated: str


class FireOut(TypedDict):
    """One fire time of a schedule: the job it launched, or why none."""

    fire_time: str
    outcome: FireOutcome
    job_id: str | None
    job_status: JobStatus | None
    note: str
    at: str


class RetentionOut(TypedDict):
    """A customer's retention; null keeps for ever."""

    keep_days: int | None
    keep_last: int | None
    output_days: int | None


class RetentionPackageOut(TypedDict):
    package_id: str | None
    package_name: str
    jobs: int
    output_chunks: int


class RetentionPreviewOut(TypedDict):
    """What retention would delete now: finished jobs, and output chunks of jobs that stay."""

    jobs: int
    output_chunks: int
    packages: list[RetentionPackageOut]


class WebhookOut(TypedDict):
    """A webhook; its `secret` is in the answer that creates it only (`secret_hint` after)."""

    id: str
    url: str
    description: str | None
    package_id: str | None
    events: list[WebhookEvent]
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    secret_hint: str
    user_id: str
    created: str
    updated: str
    secret: NotRequired[str]


class WebhookAttemptOut(TypedDict):
    """One try of a delivery: the receiver's status code, or why there was none."""

    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(TypedDict):
    """One event sent to one webhook, with every try (`history`)."""

    id: str
    webhook_id: str
    event: WebhookEvent
    job_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt: str | None
    last_status_code: int | None
    last_error: str | None
    created: str
    updated: str
    delivered: str | None
    payload: dict[str, Any]
    history: list[WebhookAttemptOut]


class DeviceOut(TypedDict):
    id: str
    name: str
    description: str
    attributes: dict[str, str]
    user_id: str
    created: str
    updated: str


class ConfigOut(TypedDict):
    id: str
    name: str
    description: str
    testvars: dict[str, str]
    interfaces: list[InterfaceOut]
    user_id: str
    created: str
    updated: str


class RunOut(TypedDict):
    id: str
    job_id: str
    attempt: int
    run_key: int
    status: RunStatus
    worker: str
    process_id: int | None
    started: str
    spawned: str | None
    output_bytes: int
    truncated: bool
    finished: str | None
    exit_code: int | None
    signal: int | None


# A change of a job's status (`from` is a Python keyword, hence the functional form).
EventOut = TypedDict(
    "EventOut",
    {
        "id": str,
        "job_id": str,
        "from": JobStatus | None,
        "to": JobStatus,
        "at": str,
        "user_id": str | None,
        "reason": str,
    },
)


class LogOut(TypedDict):
    job_id: str
    run_id: str | None
    attempt: int | None
    offset: int
    next_offset: int
    complete: bool
    truncated: bool
    content: str


class UserOut(TypedDict):
    id: str
    name: str
    login: str
    role: str
    admin: bool
    disabled: bool
    locked: bool
    description: str
    customer_id: str
    created: str
    updated: str


class LoginOut(UserOut):
    token: str


class TokenOut(TypedDict):
    id: str
    name: str
    user_id: str
    scopes: list[str]
    created: str
    expires: str | None
    last_used: str | None
    token: NotRequired[str]  # the secret, in the answer that creates it only


class CustomerOut(TypedDict):
    id: str
    name: str


class AuditEventOut(TypedDict):
    id: str
    at: str
    user_id: str | None
    token_id: str | None
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any]
    customer_id: str


class WorkerOut(TypedDict):
    id: str
    name: str
    host: str
    pid: int
    slots: int
    started: str
    heartbeat: str
    draining: bool
    stopped: str | None
    running_job_ids: list[str]


class HostnameOut(TypedDict):
    hostname: str


class VersionOut(TypedDict):
    version: str


class HealthOut(TypedDict):
    status: str
