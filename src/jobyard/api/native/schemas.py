"""Request schemas of the native API. Unknown fields are refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


def optional_name() -> Any:
    return Field(default=None, min_length=1, max_length=200)


MAX_SECONDS = 366 * 24 * 3600  # timeouts and delays: a year at most


def reference(kind: str) -> Any:
    """A reference to another object. Its checks and their messages are jobyard's own
    (`params.reference_id`), so the model takes any value and only documents the shape."""
    return Field(
        default=None,
        description=f'The {kind}\'s id, a digit string (or integer); "0", "" or null for none',
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
    )


def moment() -> Any:
    """A time, checked by `inputs.run_at`."""
    return Field(
        default=None,
        description='An RFC 3339 date-time; null or "" for now',
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestvarIn(Strict):
    __test__ = False  # not a pytest class, despite the name
    name: str = Field(min_length=1, max_length=200)
    value: str | None = None
    group: str | None = None
    default: str | None = None
    isdefault: bool | None = None
    line: int | None = None
    action: Literal["set-testvar", "delete-testvar", "create-group", "delete-group"] | None = None


class OptionsIn(Strict):
    tags: list[str] | None = None
    skip_tests: list[str] | None = None
    begin_at: str | None = None
    end_at: str | None = None
    testvars: list[TestvarIn] | None = None
    extra_cli_args: str | None = None


class JobLaunchIn(Strict):
    """CDRouter's launch body (and `process=interfaces`), plus jobyard's own extras."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"package_id": "1", "options": {"tags": ["nightly"]}}]}
    )

    package_id: Any = reference("package")
    device_id: Any = reference("device")
    config_id: Any = reference("config")
    options: OptionsIn | None = None
    run_at: Any = moment()
    context: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)


class BulkJobIn(JobLaunchIn):
    """An element of `{"jobs": [...]}`: the client sends whole Job dumps; read-only keys
    are accepted and ignored."""

    id: Any = None
    active: Any = None
    status: Any = None
    package_name: Any = None
    device_name: Any = None
    config_name: Any = None
    result_id: Any = None
    user_id: Any = None
    created: Any = None
    updated: Any = None
    automatic: Any = None
    interfaces: Any = None
    interface_names: Any = None
    uses_wireless: Any = None
    uses_ics: Any = None
    ics_interface_name: Any = None


class BulkLaunchIn(Strict):
    jobs: list[BulkJobIn] | None = None
    fields: JobLaunchIn | None = None


class BulkDeleteItem(BaseModel):
    model_config = ConfigDict(extra="ignore")  # whole Job dumps are fine; only `id` counts
    id: Any


class BulkDeleteIn(Strict):
    jobs: list[BulkDeleteItem] | None = None


class JobEditIn(Strict):
    package_id: Any = reference("package")
    device_id: Any = reference("device")
    config_id: Any = reference("config")
    options: OptionsIn | None = None
    run_at: Any = moment()
    priority: int | None = Field(default=None, ge=-1000, le=1000)


class SandboxIn(Strict):
    """A package's sandbox switches (see domain/sandbox.py)."""

    network: StrictBool | None = None
    writable_paths: list[StrictStr] | None = Field(default=None, max_length=64)


class PackageIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "hello", "command": ["echo", "hello {who}"], "max_attempts": 2}]
        }
    )

    name: str | None = optional_name()
    description: str | None = None
    kind: Literal["command", "external"] | None = None
    command: list[str] | None = Field(default=None, max_length=1000)
    env: dict[str, str] | None = None
    timeout: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    retry_delay: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    # false: a run lost with its worker is not retried (the job ends lost): never run twice
    rerun_lost: StrictBool | None = None
    retry_backoff: Literal["fixed", "exponential"] | None = Field(
        default=None,
        description="`fixed`: `retry_delay` before each retry; `exponential`: doubled after "
        "each failed attempt, at most `retry_delay_max`",
    )
    retry_delay_max: float | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="The longest wait before a retry, in seconds (0: no cap)",
    )
    retry_jitter: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Up to this fraction of each retry delay is taken off at random (0 to 1)",
    )
    concurrency: int | None = Field(default=None, ge=0, le=1_000_000)
    keep_days: int | None = Field(
        default=None, description="Days a finished job is kept (null: the customer's)"
    )
    keep_last: int | None = Field(
        default=None, description="How many newest finished jobs are kept (null: the customer's)"
    )
    output_days: int | None = Field(
        default=None, description="Days a finished job's output is kept (null: the customer's)"
    )
    config_id: Any = reference("config")
    device_id: Any = reference("device")
    positive_results: list[str] | None = None
    negative_results: list[str] | None = None
    tags: list[str] | None = None
    note: str | None = None
    sandbox: SandboxIn | None = None
    # null (the default) lets a launch append nothing but -testvar pairs
    allowed_args: list[str] | None = None


class ScheduleIn(Strict):
    """A schedule: what it launches (a launch's fields) and when (`cron` or `interval`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "nightly", "package_id": "1", "cron": "0 2 * * *", "timezone": "UTC"},
                {"name": "poll", "package_id": "1", "interval": 300, "skip_if_running": True},
            ]
        }
    )

    name: str | None = optional_name()
    description: str | None = Field(default=None, max_length=10_000)
    package_id: Any = reference("package")
    device_id: Any = reference("device")
    config_id: Any = reference("config")
    options: OptionsIn | None = None
    context: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    cron: str | None = Field(
        default=None,
        max_length=200,
        description="Five fields (minute hour day-of-month month day-of-week), or six with "
        "seconds first; null when `interval` is given",
    )
    interval: int | None = Field(
        default=None, ge=1, le=MAX_SECONDS, description="Seconds between fires, instead of cron"
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="An IANA time zone for `cron` (UTC by default)"
    )
    misfire: Literal["skip", "run_once"] | None = Field(
        default=None,
        description="Fire times missed by more than the grace (downtime): `skip` them, or "
        "launch one job for them all (`run_once`)",
    )
    skip_if_running: StrictBool | None = Field(
        default=None, description="Launch nothing while the previous job is pending or running"
    )
    paused: StrictBool | None = None


class RetentionIn(Strict):
    """A customer's retention of finished jobs; null (or left out) keeps for ever."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"keep_days": 90, "keep_last": 1000, "output_days": 30}]}
    )

    keep_days: int | None = Field(default=None, description="Days a finished job is kept")
    keep_last: int | None = Field(
        default=None, description="How many newest finished jobs of each package are kept"
    )
    output_days: int | None = Field(
        default=None, description="Days a finished job's output is kept (shorter than the job)"
    )


class WebhookIn(Strict):
    """A webhook: where to deliver which events of the customer's jobs (docs/webhooks.md).
    In an edit, a field left out or null stays as it is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://ci.example.com/hooks/jobyard", "events": ["job.finished"]}
            ]
        }
    )

    url: StrictStr | None = Field(
        default=None, max_length=2000, description="An http(s) URL; required to create"
    )
    description: StrictStr | None = Field(default=None, max_length=1000)
    package_id: Any = reference("package")
    events: list[StrictStr] | None = Field(
        default=None,
        max_length=10,
        description="Of job.launched, job.started, job.finished, job.outcome (by default "
        "job.finished)",
    )
    secret: StrictStr | None = Field(
        default=None,
        max_length=200,
        description="The signing secret (16 to 200 characters); made by the server if left out",
    )
    enabled: StrictBool | None = Field(
        default=None, description="true re-enables a disabled webhook and forgets its failures"
    )


class DeviceIn(Strict):
    name: str | None = optional_name()
    description: str | None = None
    attributes: dict[str, str] | None = None


class InterfaceIn(Strict):
    name: str = ""
    value: str = Field(min_length=1, max_length=200)
    is_wireless: bool = False
    is_ics: bool = False


class ConfigIn(Strict):
    name: str | None = optional_name()
    description: str | None = None
    testvars: dict[str, str] | None = None
    interfaces: list[InterfaceIn] | None = None


class CredentialsIn(Strict):
    """What `/authenticate` reads (from a form, JSON or the query string)."""

    username: str
    password: str = ""


class UserIn(Strict):
    login: str = Field(min_length=1, max_length=200, pattern=r"^[^\s:]+$")
    password: str | None = Field(default=None, max_length=512)
    role: str | None = None  # null or left out: viewer


class UserEditIn(Strict):
    role: str | None = None
    password: str | None = Field(default=None, max_length=512)
    current_password: str | None = Field(default=None, max_length=512)
    keep_tokens: bool = False  # a new password revokes the user's tokens unless this is true


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    expires: str | None = None  # RFC 3339
    expires_in: int | None = Field(default=None, gt=0, le=10 * 366 * 24 * 3600)  # seconds
    user_id: Any = reference("user")


class TenantIn(Strict):
    name: str = Field(min_length=1, max_length=200)


class OutcomeIn(Strict):
    status: str
    result: str | None = Field(default=None, min_length=1, max_length=1000)
