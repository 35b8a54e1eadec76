"""What every service call works with: the settings, the database and the wake-up signal."""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobyard.errors import DatabaseUnavailable
from jobyard.services.credentials import Credentials
from jobyard.settings import Settings
from jobyard.store.db import DATABASE_ERROR_TYPES, Database, Timeouts, transient
from jobyard.store.wakeup import Wakeup

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700  # the data directory: nothing in it is a job's (or anyone's) to read


@dataclass
class Runtime:
    settings: Settings
    db: Database
    wakeup: Wakeup = field(default_factory=Wakeup)
    # True when every process using an SQLite database is this one (jobyard serve with its
    # embedded workers): in-memory wake-ups then reach every worker, so none need to poll.
    in_process_only: bool = True
    # Password hashing and the token key are the process's: one set per runtime.
    credentials: Credentials = field(init=False)

    def __post_init__(self) -> None:
        self.credentials = Credentials(self.settings)

    @property
    def pg(self) -> bool:
        return not self.db.is_sqlite


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_runtime(settings: Settings) -> Runtime:
    """Connect to the configured database (creating the data directory, private, first)."""
    private_directory(settings.data_dir)
    db = Database(
        settings.effective_database_url,
        query_timeout=settings.query_timeout_seconds,
        timeouts=database_timeouts(settings),
    )
    return Runtime(settings=settings, db=db)


def database_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        connect=settings.db_connect_timeout_seconds,
        lock=settings.db_lock_timeout_seconds,
        statement=settings.db_statement_timeout_seconds,
        idle_in_transaction=settings.db_idle_in_transaction_seconds,
    )


def private_directory(path: Path) -> None:
    """Make the directory, the server's alone (0700), or make the one there so."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
        logger.warning("made %s private (its mode was %o, now %o)", path, mode, PRIVATE_DIR_MODE)


# What a failing statement raises (the store's driver errors): `unavailable` tells which of
# them mean that the database could not serve it just now.
DATABASE_ERRORS = DATABASE_ERROR_TYPES


def unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The error to answer with when `error` says the database could not be reached or could
    not serve the statement just now (worth trying again shortly); None for any other."""
    return DatabaseUnavailable() if transient(error) else None


def check_database(rt: Runtime) -> None:
    """Raise if the database cannot answer a query."""
    rt.db.ping()
