"""The objects the native API answers with, as TypedDicts: made from the server's
OpenAPI description by `tests/cli/models_from_openapi.py` (a test holds them to it). Do not
edit by hand: run `python -m tests.cli.models_from_openapi`."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Backoff = Literal["fixed", "exponential"]

DeliveryStatus = Literal["pending", "delivered", "failed"]

FireOutcome = Literal["launched", "skipped_running", "refused"]

JobStatus = Literal[
    "pending",
    "running",
    "completed",
    "completed_with_issues",
    "failed",
    "timed_out",
    "cancelled",
    "lost",
]

Misfire = Literal["skip", "run_once"]

OutcomeStatus = Literal["completedOk", "completedWithIssues"]

PackageKind = Literal["command", "external"]

RunStatus = Literal["running", "completed", "failed", "timed_out", "cancelled", "lost"]

WebhookEvent = Literal["job.launched", "job.started", "job.finished", "job.outcome", "ping"]


class AuditEvent(TypedDict):
    id: str
    at: str
    user_id: str | None
    token_id: str | None
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any]
    customer_id: str


class Config(TypedDict):
    id: str
    name: str
    description: str
    testvars: dict[str, Any]
    interfaces: list[Interface]
    user_id: str
    created: str
    updated: str


class Customer(TypedDict):
    id: str
    name: str


class Device(TypedDict):
    id: str
    name: str
    description: str
    attributes: dict[str, Any]
    user_id: str
    created: str
    updated: str


Event = TypedDict(
    "Event",
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


class Fire(TypedDict):
    fire_time: str
    outcome: FireOutcome
    job_id: str | None
    job_status: JobStatus | None
    note: str
    at: str


class Health(TypedDict):
    status: str


class Hostname(TypedDict):
    hostname: str


class Interface(TypedDict):
    name: str
    value: str
    is_wireless: bool
    is_ics: bool


class Job(TypedDict):
    id: str
    active: bool
    status: JobStatus
    options: Options
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
    interfaces: list[Interface]
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
    outcome: Outcome


class Log(TypedDict):
    job_id: str
    run_id: str | None
    attempt: int | None
    offset: int
    next_offset: int
    complete: bool
    truncated: bool
    content: str


class Login(TypedDict):
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
    token: str


class Options(TypedDict):
    tags: list[str]
    skip_tests: list[str]
    begin_at: str
    end_at: str
    testvars: list[Testvar]
    extra_cli_args: str


class Outcome(TypedDict):
    status: OutcomeStatus | None
    result: str | None


class Package(TypedDict):
    id: str
    name: str
    description: str
    kind: PackageKind
    command: list[str]
    env: dict[str, Any]
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


class Result(TypedDict):
    id: str
    job_id: str
    payload: dict[str, Any]
    by: str | None
    at: str


class Retention(TypedDict):
    keep_days: int | None
    keep_last: int | None
    output_days: int | None


class RetentionPackage(TypedDict):
    package_id: str | None
    package_name: str
    jobs: int
    output_chunks: int


class RetentionPreview(TypedDict):
    jobs: int
    output_chunks: int
    packages: list[RetentionPackage]


class Run(TypedDict):
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


class Schedule(TypedDict):
    id: str
    name: str
    description: str
    package_id: str
    device_id: str
    config_id: str
    options: Options
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


class Testvar(TypedDict):
    group: str
    name: str
    value: str
    default: str
    isdefault: bool
    line: int
    action: str | None


class Token(TypedDict):
    id: str
    name: str
    user_id: str
    scopes: list[str]
    created: str
    expires: str | None
    last_used: str | None
    token: str


class User(TypedDict):
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


class Version(TypedDict):
    version: str


class WebhookAttempt(TypedDict):
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(TypedDict):
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
    history: list[WebhookAttempt]


class Webhook(TypedDict):
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
    secret: str


class Worker(TypedDict):
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
