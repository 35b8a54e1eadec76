"""Typed settings: a `jobyard.toml` file, `JOBYARD_*` variables over it, and CLI flags over
both; validated as a whole when a command starts, never at import time."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from jobyard.errors import ValidationFailed

ENV_PREFIX = "JOBYARD_"
CONFIG_ENV = "JOBYARD_CONFIG"  # the config file's path; `jobyard.toml` here when unset
DEFAULT_CONFIG_FILE = Path("jobyard.toml")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = "./var"
DEFAULT_WORKERS = 2
DEFAULT_OUTPUT_CAP_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# A bulk launch's body: 10,000 varied jobs take about 1.3 MB, the most allowed (100,000)
# repeating one small job about 2 MB, varied ones several times that.
DEFAULT_MAX_BULK_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_CANCEL_GRACE_SECONDS = 5.0
DEFAULT_LEASE_SECONDS = 15.0
DEFAULT_DRAIN_SECONDS = 30.0
RUN_AS_SERVER = "server"  # JOBYARD_RUN_AS: jobs run as the server's own user, not isolated
SANDBOXES = ("none", "bwrap")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_QUERY_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_CONCURRENT_HASHES = 2
# PostgreSQL limits on every connection (see `store.db.Timeouts`); 0 turns one off.
DEFAULT_DB_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_DB_LOCK_TIMEOUT_SECONDS = 5.0
DEFAULT_DB_STATEMENT_TIMEOUT_SECONDS = 30.0
DEFAULT_DB_IDLE_IN_TRANSACTION_SECONDS = 10.0
DEFAULT_DB_WAIT_SECONDS = 60.0  # how long `serve` and `worker` wait for the database at start
# A schedule's fire time found later than this (after downtime) was missed: its misfire
# policy decides whether it still launches.
DEFAULT_SCHEDULE_MISFIRE_GRACE_SECONDS = 60.0
# Retention's background deletion: how often it looks, how many jobs one transaction deletes,
# and the pause between two such transactions (so that launches and claims go between).
DEFAULT_RETENTION_INTERVAL_SECONDS = 60.0
DEFAULT_RETENTION_BATCH = 200
DEFAULT_RETENTION_PAUSE_SECONDS = 0.05
# Webhooks (docs/webhooks.md): each try's time limit, the tries a delivery gets, the first
# wait between two (doubling up to the longest), the deliveries in a row that may fail before
# a webhook is disabled, and how often the dispatcher looks for new events.
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 8
DEFAULT_WEBHOOK_RETRY_SECONDS = 10.0
DEFAULT_WEBHOOK_RETRY_MAX_SECONDS = 3600.0
DEFAULT_WEBHOOK_DISABLE_AFTER = 10
DEFAULT_WEBHOOK_POLL_SECONDS = 1.0
JOB_UIDS_NONE = "none"  # JOBYARD_JOB_UIDS: every job of a worker runs as the one job user
# uid_t is 32 bits; (uid_t)-1 means "unchanged" to setresuid, and uids from 2^31 on trouble
# some programs and kernel file systems (devpts): a range stays below.
MAX_JOB_UID = 2**31 - 1
# Shown masked by `jobyard config show`.
SECRET_SETTINGS = frozenset({"admin_token", "admin_password", "secret_key", "metrics_token"})

Seconds = Annotated[float, Field(ge=0)]
Bytes = Annotated[int, Field(ge=1024)]
Lowered = Annotated[str, StringConstraints(to_lower=True)]
# A password is taken as given: spaces around it are part of it.
Password = Annotated[str | None, StringConstraints(strip_whitespace=False)]


class Settings(BaseModel):
    """Everything a jobyard process needs to know about its deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database_url: str = ""
    workers: int = Field(DEFAULT_WORKERS, ge=0)
    admin_token: str | None = None
    admin_password: Password = None
    output_cap_bytes: Bytes = DEFAULT_OUTPUT_CAP_BYTES
    max_body_bytes: Bytes = DEFAULT_MAX_BODY_BYTES
    max_bulk_body_bytes: Bytes = DEFAULT_MAX_BULK_BODY_BYTES
    cancel_grace_seconds: Seconds = DEFAULT_CANCEL_GRACE_SECONDS
    public_url: str = ""
    lease_seconds: float = Field(DEFAULT_LEASE_SECONDS, gt=0)
    drain_seconds: Seconds = DEFAULT_DRAIN_SECONDS
    run_as: str = ""  # a user name or uid, "server", or "" (root: the jobyard-job user)
    runs_dir: Path | None = None  # where each run's directory is made; None: the temp dir's
    sandbox: Literal["none", "bwrap"] = "none"
    # Whether customer admins may define what packages run (kind, command, env, allowed_args)
    # for their customer; system admins always may.
    customer_admins_define_commands: bool = False
    query_timeout_seconds: Seconds = DEFAULT_QUERY_TIMEOUT_SECONDS  # a list's query; 0: none
    secret_key: str | None = Field(None, repr=False)
    max_concurrent_hashes: int = Field(DEFAULT_MAX_CONCURRENT_HASHES, ge=1)
    job_uids: Lowered = ""  # "START-END", "none", or "" (see `worker.confinement`)
    db_connect_timeout_seconds: Seconds = DEFAULT_DB_CONNECT_TIMEOUT_SECONDS
    db_lock_timeout_seconds: Seconds = DEFAULT_DB_LOCK_TIMEOUT_SECONDS
    db_statement_timeout_seconds: Seconds = DEFAULT_DB_STATEMENT_TIMEOUT_SECONDS
    db_idle_in_transaction_seconds: Seconds = DEFAULT_DB_IDLE_IN_TRANSACTION_SECONDS
    db_wait_seconds: Seconds = DEFAULT_DB_WAIT_SECONDS  # 0: fail at once if unreachable
    # Whether this process fires due schedules and deletes what retention lets go (`serve`
    # and `worker` alike; any number may, see docs/api.md "Schedules").
    scheduler: bool = True
    schedule_misfire_grace_seconds: Seconds = DEFAULT_SCHEDULE_MISFIRE_GRACE_SECONDS
    retention_interval_seconds: Seconds = DEFAULT_RETENTION_INTERVAL_SECONDS
    retention_batch: int = Field(DEFAULT_RETENTION_BATCH, ge=1)
    retention_pause_seconds: Seconds = DEFAULT_RETENTION_PAUSE_SECONDS
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # `/metrics` takes this token (or a system admin's) as a bearer; with `metrics_public`
    # it takes anyone, as Prometheus exporters usually do.
    metrics_token: str | None = Field(None, repr=False)
    metrics_public: bool = False
    metrics_port: int | None = Field(None, ge=0, le=65535)  # `jobyard worker`'s own /metrics
    # Networks webhooks may deliver to although they are not public (loopback, private, ...):
    # comma-separated CIDRs, `127.0.0.0/8,10.0.0.0/8`; by default none.
    webhook_allow_networks: str = ""
    webhook_timeout_seconds: float = Field(DEFAULT_WEBHOOK_TIMEOUT_SECONDS, gt=0)
    webhook_max_attempts: int = Field(DEFAULT_WEBHOOK_MAX_ATTEMPTS, ge=1)
    webhook_retry_seconds: Seconds = DEFAULT_WEBHOOK_RETRY_SECONDS
    webhook_retry_max_seconds: Seconds = DEFAULT_WEBHOOK_RETRY_MAX_SECONDS
    webhook_disable_after: int = Field(DEFAULT_WEBHOOK_DISABLE_AFTER, ge=1)
    webhook_poll_seconds: float = Field(DEFAULT_WEBHOOK_POLL_SECONDS, gt=0)

    @field_validator(
        "sandbox",
        "log_format",
        "log_level",
        "customer_admins_define_commands",
        "scheduler",
        "metrics_public",
        mode="before",
    )
    @classmethod
    def _lowered(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_token", "secret_key", "metrics_token", "admin_password")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("job_uids")
    @classmethod
    def _a_uid_range(cls, value: str) -> str:
        parse_job_uids(value)
        return value

    @field_validator("webhook_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        return ",".join(parse_networks(value))

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'jobyard.db').resolve()}"

    @property
    def effective_runs_dir(self) -> Path:
        """The root of the runs' own directories (one per server uid, so two installations
        of different users never share it)."""
        if self.runs_dir is not None:
            return self.runs_dir
        return Path(tempfile.gettempdir()) / f"jobyard-runs-{os.getuid()}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given values (validated), skipping those left as None (unset CLI
        flags)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return Settings.model_validate(self.model_dump() | given)
        except ValidationError as error:
            flag = _explain(error, lambda name: f"--{name.replace('_', '-')}")
            raise ValidationFailed(flag) from None

    def shown(self) -> dict[str, Any]:
        """The settings as `jobyard config show` prints them: secrets masked."""
        values = self.model_dump(mode="json")
        for name in SECRET_SETTINGS:
            if values.get(name):
                values[name] = "***"
        values["database_url"] = redact_url(self.database_url)
        return values


def redact_url(url: str) -> str:
    """A database URL without its password (user names stay: they help find the account)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{place}"


class _Environment(EnvSettingsSource):
    """`JOBYARD_*` variables from the given mapping rather than always `os.environ`, so that
    a caller (and a test) says which environment counts."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names match whatever their case, as in `os.environ` by default; an empty or blank
        # value is as good as unset (the default applies).
        return {name.lower(): value for name, value in self._given.items() if value.strip()}


class _Sources(BaseSettings, Settings):
    """The settings as read from their sources; `load_settings` answers a plain `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True
    )


def config_file(env: Mapping[str, str]) -> Path | None:
    """The config file that counts: `JOBYARD_CONFIG`'s (which must exist), else `jobyard.toml`
    in the working directory if there is one."""
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named)
        if not path.is_file():
            raise ValidationFailed(f"{CONFIG_ENV}={named}: no such file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the config file and the environment (`os.environ` unless another
    mapping is given), the environment winning; a clear error names what is wrong where."""
    environment: Mapping[str, str] = os.environ if env is None else env
    path = config_file(environment)

    class Loaded(_Sources):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [_Environment(settings_cls, environment)]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        loaded = Loaded()
    except ValidationError as error:
        raise ValidationFailed(_explain(error, _origin(environment, path))) from None
    except ValueError as error:  # the file is not TOML
        raise ValidationFailed(f"{path}: {error}") from None
    return Settings.model_validate(loaded.model_dump())


def _origin(env: Mapping[str, str], path: Path | None) -> Any:
    """Where a setting's value came from, as the person who set it names it."""

    def origin(name: str) -> str:
        variable = ENV_PREFIX + name.upper()
        if env.get(variable, "").strip():
            return variable
        return f"{name} in {path}"

    return origin


_PLAIN = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false (or 1/0, yes/no, on/off)",
    "extra_forbidden": "is not a setting jobyard knows",
}


def _explain(error: ValidationError, origin: Any) -> str:
    """One line per wrong value: `JOBYARD_PORT must be an integer, not 'http'`."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "settings"
        what = _PLAIN.get(problem["type"]) or _constraint(problem) or problem["msg"]
        given = problem.get("input")
        shown = (
            ""
            if isinstance(given, dict) or problem["type"] == "extra_forbidden"
            else f", not {given!r}"
        )
        lines.append(f"{origin(name)} {what}{shown}")
    return "; ".join(lines)


def _constraint(problem: Any) -> str | None:
    context = problem.get("ctx") or {}
    if problem["type"] == "greater_than_equal":
        return "must be 0 or more" if context["ge"] == 0 else f"must be at least {context['ge']}"
    if problem["type"] == "greater_than":
        return f"must be more than {context['gt']}"
    if problem["type"] == "less_than_equal":
        return f"must be at most {context['le']}"
    if problem["type"] == "literal_error":
        return f"must be one of {context['expected']}"
    if problem["type"] == "value_error":
        return str(context.get("error", problem["msg"]))
    return None


def parse_job_uids(raw: str) -> tuple[int, int] | None:
    """`JOBYARD_JOB_UIDS`'s range, first and last uid; None for "" or "none"."""
    raw = raw.strip().lower()
    if raw in ("", JOB_UIDS_NONE):
        return None
    first, dash, last = raw.partition("-")
    if not (dash and first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        raise ValueError("must be START-END (e.g. 200000-265535) or none")
    start, end = int(first), int(last)
    if not 0 < start <= end <= MAX_JOB_UID:
        raise ValueError(f"must be uids from 1 to {MAX_JOB_UID}, the first not above the last")
    return start, end


def parse_networks(raw: str) -> tuple[str, ...]:
    """`JOBYARD_WEBHOOK_ALLOW_NETWORKS`'s CIDRs, each checked and normalised."""
    found = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            shown = part.strip()
            raise ValueError(
                f"must be networks such as 10.0.0.0/8 or fd00::/8, comma-separated ({shown!r}"
                " is none)"
            ) from None
    return tuple(found)
