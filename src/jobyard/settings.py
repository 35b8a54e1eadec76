"""Typed settings, read from `JOBYARD_*` variables and CLI flags; never at import time."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jobyard.errors import ValidationFailed

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


@dataclass(frozen=True)
class Settings:
    """Everything a jobyard process needs to know about its deployment."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    database_url: str = ""
    workers: int = DEFAULT_WORKERS
    admin_token: str | None = None
    admin_password: str | None = None
    output_cap_bytes: int = DEFAULT_OUTPUT_CAP_BYTES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_bulk_body_bytes: int = DEFAULT_MAX_BULK_BODY_BYTES
    cancel_grace_seconds: float = DEFAULT_CANCEL_GRACE_SECONDS
    public_url: str = ""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    run_as: str = ""  # a user name or uid, "server", or "" (root: the jobyard-job user)
    runs_dir: Path | None = None  # where each run's directory is made; None: the temp dir's
    sandbox: str = "none"  # or "bwrap"
    # Whether customer admins may define what packages run (kind, command, env, allowed_args)
    # for their customer; system admins always may.
    customer_admins_define_commands: bool = False
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS  # a list's query; 0: none
    secret_key: str | None = field(default=None, repr=False)
    max_concurrent_hashes: int = DEFAULT_MAX_CONCURRENT_HASHES
    job_uids: str = ""  # "START-END", "none", or "" (see `worker.confinement`)
    db_connect_timeout_seconds: float = DEFAULT_DB_CONNECT_TIMEOUT_SECONDS
    db_lock_timeout_seconds: float = DEFAULT_DB_LOCK_TIMEOUT_SECONDS
    db_statement_timeout_seconds: float = DEFAULT_DB_STATEMENT_TIMEOUT_SECONDS
    db_idle_in_transaction_seconds: float = DEFAULT_DB_IDLE_IN_TRANSACTION_SECONDS
    db_wait_seconds: float = DEFAULT_DB_WAIT_SECONDS  # 0: fail at once if unreachable at start
    # Whether this process fires due schedules and deletes what retention lets go (`serve`
    # and `worker` alike; any number may, see docs/api.md "Schedules").
    scheduler: bool = True
    schedule_misfire_grace_seconds: float = DEFAULT_SCHEDULE_MISFIRE_GRACE_SECONDS
    retention_interval_seconds: float = DEFAULT_RETENTION_INTERVAL_SECONDS
    retention_batch: int = DEFAULT_RETENTION_BATCH
    retention_pause_seconds: float = DEFAULT_RETENTION_PAUSE_SECONDS
    # Networks (CIDRs) webhooks may deliver to although they are not public (loopback,
    # private, ...); by default none.
    webhook_allow_networks: tuple[str, ...] = ()
    webhook_timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    webhook_max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    webhook_retry_seconds: float = DEFAULT_WEBHOOK_RETRY_SECONDS
    webhook_retry_max_seconds: float = DEFAULT_WEBHOOK_RETRY_MAX_SECONDS
    webhook_disable_after: int = DEFAULT_WEBHOOK_DISABLE_AFTER
    webhook_poll_seconds: float = DEFAULT_WEBHOOK_POLL_SECONDS

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
        """A copy with the given values, skipping those left as None (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number, not {raw!r}") from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value < 0:
        raise ValidationFailed(f"{name} must be 0 or more seconds, not {value}")
    return value


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValidationFailed(f"{name} must be true or false (or 1/0, yes/no), not {raw!r}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (`os.environ` unless another mapping is given)."""
    env = os.environ if env is None else env
    return Settings(
        host=env.get("JOBYARD_HOST", "").strip() or DEFAULT_HOST,
        port=_int(env, "JOBYARD_PORT", DEFAULT_PORT, minimum=0),
        data_dir=Path(env.get("JOBYARD_DATA_DIR", "").strip() or DEFAULT_DATA_DIR),
        database_url=env.get("JOBYARD_DATABASE_URL", "").strip(),
        workers=_int(env, "JOBYARD_WORKERS", DEFAULT_WORKERS, minimum=0),
        admin_token=env.get("JOBYARD_ADMIN_TOKEN", "").strip() or None,
        admin_password=env.get("JOBYARD_ADMIN_PASSWORD", "") or None,
        output_cap_bytes=_int(env, "JOBYARD_OUTPUT_CAP_BYTES", DEFAULT_OUTPUT_CAP_BYTES, 1024),
        max_body_bytes=_int(env, "JOBYARD_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024),
        max_bulk_body_bytes=_int(
            env, "JOBYARD_MAX_BULK_BODY_BYTES", DEFAULT_MAX_BULK_BODY_BYTES, 1024
        ),
        cancel_grace_seconds=_float(
            env, "JOBYARD_CANCEL_GRACE_SECONDS", DEFAULT_CANCEL_GRACE_SECONDS
        ),
        public_url=env.get("JOBYARD_PUBLIC_URL", "").strip(),
        lease_seconds=_float(env, "JOBYARD_LEASE_SECONDS", DEFAULT_LEASE_SECONDS),
        drain_seconds=_float(env, "JOBYARD_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS),
        run_as=env.get("JOBYARD_RUN_AS", "").strip(),
        runs_dir=_path(env, "JOBYARD_RUNS_DIR"),
        sandbox=_choice(env, "JOBYARD_SANDBOX", SANDBOXES),
        customer_admins_define_commands=_bool(
            env, "JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS", default=False
        ),
        query_timeout_seconds=_float(
            env, "JOBYARD_QUERY_TIMEOUT_SECONDS", DEFAULT_QUERY_TIMEOUT_SECONDS
        ),
        secret_key=env.get("JOBYARD_SECRET_KEY", "").strip() or None,
        max_concurrent_hashes=_int(
            env, "JOBYARD_MAX_CONCURRENT_HASHES", DEFAULT_MAX_CONCURRENT_HASHES, minimum=1
        ),
        job_uids=_job_uids(env),
        db_connect_timeout_seconds=_seconds(
            env, "JOBYARD_DB_CONNECT_TIMEOUT_SECONDS", DEFAULT_DB_CONNECT_TIMEOUT_SECONDS
        ),
        db_lock_timeout_seconds=_seconds(
            env, "JOBYARD_DB_LOCK_TIMEOUT_SECONDS", DEFAULT_DB_LOCK_TIMEOUT_SECONDS
        ),
        db_statement_timeout_seconds=_seconds(
            env, "JOBYARD_DB_STATEMENT_TIMEOUT_SECONDS", DEFAULT_DB_STATEMENT_TIMEOUT_SECONDS
        ),
        db_idle_in_transaction_seconds=_seconds(
            env, "JOBYARD_DB_IDLE_IN_TRANSACTION_SECONDS", DEFAULT_DB_IDLE_IN_TRANSACTION_SECONDS
        ),
        db_wait_seconds=_seconds(env, "JOBYARD_DB_WAIT_SECONDS", DEFAULT_DB_WAIT_SECONDS),
        scheduler=_bool(env, "JOBYARD_SCHEDULER", default=True),
        schedule_misfire_grace_seconds=_seconds(
            env,
            "JOBYARD_SCHEDULE_MISFIRE_GRACE_SECONDS",
            DEFAULT_SCHEDULE_MISFIRE_GRACE_SECONDS,
        ),
        retention_interval_seconds=_seconds(
            env, "JOBYARD_RETENTION_INTERVAL_SECONDS", DEFAULT_RETENTION_INTERVAL_SECONDS
        ),
        retention_batch=_int(env, "JOBYARD_RETENTION_BATCH", DEFAULT_RETENTION_BATCH, minimum=1),
        retention_pause_seconds=_seconds(
            env, "JOBYARD_RETENTION_PAUSE_SECONDS", DEFAULT_RETENTION_PAUSE_SECONDS
        ),
        webhook_allow_networks=_networks(env, "JOBYARD_WEBHOOK_ALLOW_NETWORKS"),
        webhook_timeout_seconds=_seconds(
            env, "JOBYARD_WEBHOOK_TIMEOUT_SECONDS", DEFAULT_WEBHOOK_TIMEOUT_SECONDS
        ),
        webhook_max_attempts=_int(
            env, "JOBYARD_WEBHOOK_MAX_ATTEMPTS", DEFAULT_WEBHOOK_MAX_ATTEMPTS, minimum=1
        ),
        webhook_retry_seconds=_seconds(
            env, "JOBYARD_WEBHOOK_RETRY_SECONDS", DEFAULT_WEBHOOK_RETRY_SECONDS
        ),
        webhook_retry_max_seconds=_seconds(
            env, "JOBYARD_WEBHOOK_RETRY_MAX_SECONDS", DEFAULT_WEBHOOK_RETRY_MAX_SECONDS
        ),
        webhook_disable_after=_int(
            env, "JOBYARD_WEBHOOK_DISABLE_AFTER", DEFAULT_WEBHOOK_DISABLE_AFTER, minimum=1
        ),
        webhook_poll_seconds=_seconds(
            env, "JOBYARD_WEBHOOK_POLL_SECONDS", DEFAULT_WEBHOOK_POLL_SECONDS
        ),
    )


def parse_job_uids(raw: str) -> tuple[int, int] | None:
    """`JOBYARD_JOB_UIDS`'s range, first and last uid; None for "" or "none"."""
    raw = raw.strip().lower()
    if raw in ("", JOB_UIDS_NONE):
        return None
    first, dash, last = raw.partition("-")
    if not (dash and first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        raise ValidationFailed(
            f"JOBYARD_JOB_UIDS must be START-END (e.g. 200000-265535) or none, not {raw!r}"
        )
    start, end = int(first), int(last)
    if not 0 < start <= end <= MAX_JOB_UID:
        raise ValidationFailed(
            f"JOBYARD_JOB_UIDS={raw}: uids from 1 to {MAX_JOB_UID}, the first not above the last"
        )
    return start, end


def _job_uids(env: Mapping[str, str]) -> str:
    raw = env.get("JOBYARD_JOB_UIDS", "").strip().lower()
    parse_job_uids(raw)
    return raw


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (`127.0.0.0/8,10.0.0.0/8`), each checked and normalised."""
    found = []
    for part in env.get(name, "").split(","):
        if not part.strip():
            continue
        try:
            found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"{name} holds {part.strip()!r}, not a network such as 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(found)
