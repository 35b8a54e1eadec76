"""What every service call works with: the settings, the database, the wake-up signal and
the log watcher."""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobyard.domain.accounts import TokenRecord, UserRecord
from jobyard.domain.launching import ResolvedLaunch
from jobyard.errors import DatabaseUnavailable
from jobyard.services.credentials import Credentials
from jobyard.services.log_watch import LogWatch
from jobyard.services.remembered import CATALOG, CREDENTIALS, Remembered
from jobyard.services.wakeup import Wakeup
from jobyard.settings import Settings
from jobyard.store.db import DATABASE_ERROR_TYPES, Database, Timeouts, transient

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700  # the data directory: nothing in it is a job's (or anyone's) to read


@dataclass
class Runtime:
    settings: Settings
    db: Database
    wakeup: Wakeup = field(default_factory=Wakeup)
    # Wakes this process's scheduler when a schedule changes (services/schedules.py).
    schedule_changes: Wakeup = field(default_factory=Wakeup)
    # True when every process using an SQLite database is this one (jobyard serve with its
    # embedded workers): in-memory wake-ups then reach every worker. A `jobyard worker`
    # listens for the other processes' doorbell (polling where it cannot).
    in_process_only: bool = True
    # Password hashing and the token key are the process's: one set per runtime.
    credentials: Credentials = field(init=False)
    # One watcher of followed logs per process, however many follow (services/log_watch.py).
    log_watch: LogWatch = field(init=False)
    # Tokens read (with their user) and launches resolved, remembered while their epoch
    # holds (services/remembered.py): on SQLite, where reading the epoch costs less than
    # reading the rows. None on PostgreSQL, where both are a round trip.
    tokens_read: Remembered[str, tuple[TokenRecord, UserRecord]] | None = field(init=False)
    launches_resolved: Remembered[Hashable, ResolvedLaunch] | None = field(init=False)

    def __post_init__(self) -> None:
        if self.db.doorbell is not None:
            self.wakeup.announce = self.db.doorbell.ring
        self.credentials = Credentials(self.settings)
        self.log_watch = LogWatch(self.db)
        self.tokens_read = Remembered(CREDENTIALS) if self.db.is_sqlite else None
        self.launches_resolved = Remembered(CATALOG) if self.db.is_sqlite else None

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
        background_checkpoints=True,
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


DB_WAIT_FIRST_PAUSE_SECONDS = 0.5
DB_WAIT_MAX_PAUSE_SECONDS = 4.0


def wait_for_database(rt: Runtime) -> None:
    """Return once PostgreSQL answers. A fleet may start before its database: while it
    cannot be reached, try again (pauses from 0.5 s doubling to 4 s) for up to
    `db_wait_seconds`, then raise `DatabaseUnavailable` (at once with 0). It says so once
    when it starts waiting. An SQLite file is local: nothing to wait for."""
    if rt.db.is_sqlite:
        return
    limit = rt.settings.db_wait_seconds
    deadline = time.monotonic() + limit
    pause = DB_WAIT_FIRST_PAUSE_SECONDS
    waited = False
    while True:
        try:
            rt.db.ping()
        except Exception as error:
            if not transient(error):
                raise
            reason = _first_line(error)
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnavailable(
                    f"the database cannot be reached (waited {limit:g} s, "
                    f"JOBYARD_DB_WAIT_SECONDS): {reason}"
                ) from None
            if not waited:
                logger.warning(
                    "the database cannot be reached (%s); waiting up to %g s for it", reason, limit
                )
            waited = True
            time.sleep(min(pause, left))
            pause = min(2 * pause, DB_WAIT_MAX_PAUSE_SECONDS)
        else:
            if waited:
                logger.warning("the database is reachable")
            return


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_database(rt: Runtime) -> None:
    """Raise if the database cannot answer a query."""
    rt.db.ping()
