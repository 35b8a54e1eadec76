"""Pure domain records: what a package, device, config, job and run are."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from jobyard.domain.outcomes import Outcome
from jobyard.domain.statuses import JobStatus, RunStatus

Record = TypeVar("Record")


def evolve(record: Record, **changes: Any) -> Record:
    """A copy of a frozen record with some fields changed: `dataclasses.replace` without
    re-running `__init__` (workers copy every job they claim, and `replace` would cost a
    tenth of their database turn)."""
    fields = type(record).__dataclass_fields__  # type: ignore[attr-defined]
    if not changes.keys() <= fields.keys():
        raise TypeError(f"{type(record).__name__} has no field {set(changes) - set(fields)}")
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__, **changes)
    return copy


class PackageKind(enum.StrEnum):
    COMMAND = "command"  # executed by a worker as a child process
    EXTERNAL = "external"  # never executed: an outside actor starts and completes it


@dataclass(frozen=True)
class Interface:
    """A network interface (an exclusive resource) a job uses while it runs."""

    name: str
    value: str
    is_wireless: bool = False
    is_ics: bool = False


@dataclass(frozen=True)
class Testvar:
    """A CDRouter testvar change carried by a job's options."""

    name: str
    value: str = ""
    group: str = ""
    action: str | None = None


@dataclass(frozen=True)
class JobOptions:
    """CDRouter job options; `None` for tags/skip_tests/testvars means unset."""

    tags: tuple[str, ...] | None = None
    skip_tests: tuple[str, ...] | None = None
    begin_at: str = ""
    end_at: str = ""
    testvars: tuple[Testvar, ...] | None = None
    extra_cli_args: str = ""


@dataclass(frozen=True)
class Device:
    id: int
    name: str
    description: str
    attributes: Mapping[str, str]
    user_id: int
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class Config:
    id: int
    name: str
    description: str
    testvars: Mapping[str, str]
    interfaces: tuple[Interface, ...]
    user_id: int
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class Package:
    id: int
    name: str
    description: str
    kind: PackageKind
    command: tuple[str, ...]
    env: Mapping[str, str]
    timeout_seconds: float | None
    max_attempts: int
    retry_delay_seconds: float
    concurrency_limit: int | None
    config_id: int | None
    device_id: int | None
    positive_results: tuple[str, ...]
    negative_results: tuple[str, ...] | None
    tags: tuple[str, ...]
    note: str
    user_id: int
    created: datetime
    updated: datetime
    sandbox: Mapping[str, Any] = field(default_factory=dict)  # see domain/sandbox.py
    # The forms of argument a launch may append (domain/arguments.py); None allows none.
    allowed_args: tuple[str, ...] | None = None
    # Whether a run lost with its worker is retried (at least once); False: never run twice.
    rerun_lost: bool = True
    # How the wait before another attempt grows (domain/run_end.py's RetryPolicy).
    retry_backoff: str = "fixed"
    retry_delay_max_seconds: float | None = None
    retry_jitter: float = 0.0
    # Its own retention of finished jobs (domain/retention.py); None: its customer's.
    keep_days: int | None = None
    keep_last: int | None = None
    output_days: int | None = None


@dataclass(frozen=True)
class Job:
    id: int
    status: JobStatus
    package_id: int
    package_name: str
    kind: PackageKind
    device_id: int | None  # the override given at launch; None = the package's
    device_name: str
    config_id: int | None
    config_name: str
    options: JobOptions
    context: Mapping[str, Any]
    argv: tuple[str, ...]
    env: Mapping[str, str]
    timeout_seconds: float | None
    interfaces: tuple[Interface, ...]
    priority: int
    run_at: datetime
    user_id: int
    automatic: bool
    created: datetime
    updated: datetime
    started: datetime | None = None
    finished: datetime | None = None
    current_run_id: int | None = None  # the latest attempt's run (the API's `result_id`)
    exit_code: int | None = None
    attempts: int = 0
    cancel_requested: bool = False
    tags: tuple[str, ...] = field(default=())
    tenant_id: int = 1
    outcome: Outcome | None = None
    target_device_id: int | None = None  # the device it runs against, whichever gave it
    target_config_id: int | None = None  # the config it runs with, whichever gave it
    sandbox: Mapping[str, Any] = field(default_factory=dict)  # the package's, at launch

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def interface_names(self) -> tuple[str, ...]:
        return tuple(i.value for i in self.interfaces)

    @property
    def status_since(self) -> datetime:
        """When the job took its current status: its end, its start, else its creation."""
        if self.status.terminal:
            return self.finished or self.updated
        if self.status is JobStatus.RUNNING:
            return self.started or self.updated
        return self.created


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker knows of a job it claimed: what to run, and what its run's end is
    decided by. Reading the whole `Job` for every claim (seven JSON columns and six times
    parsed) would be the largest part of a worker's turn at the database."""

    id: int
    status: JobStatus
    package_id: int
    user_id: int
    argv: tuple[str, ...]
    env: Mapping[str, str]
    timeout_seconds: float | None
    interface_names: tuple[str, ...]
    attempts: int
    outcome: Outcome | None = None
    sandbox: Mapping[str, Any] = field(default_factory=dict)  # the package's, at launch
    run_at: datetime | None = None  # when it became due (its launch, or a later run_at)


@dataclass(frozen=True)
class RunProcess:
    """A run's process as recorded on its worker's host: the pid that leads its process
    group and session (0: not recorded yet), when the run started, and the stored hash of
    the token its process started with (None for runs older than job tokens)."""

    run_id: int
    pid: int
    run_started: datetime
    token_hash: str | None = None


@dataclass(frozen=True)
class Run:
    id: int
    job_id: int
    attempt: int
    run_key: int
    status: RunStatus
    worker: str
    process_id: int
    started: datetime  # when a worker claimed the job
    spawned: datetime | None  # when its process came to exist
    finished: datetime | None
    exit_code: int | None
    signal: int | None
    output_bytes: int
    truncated: bool


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: int
    from_status: JobStatus | None
    to_status: JobStatus
    at: datetime
    user_id: int | None
    reason: str


@dataclass(frozen=True)
class JobResult:
    """A custom payload appended to a job."""

    id: int
    job_id: int
    user_id: int | None
    payload: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class LogChunk:
    offset: int
    stream: str
    data: bytes
