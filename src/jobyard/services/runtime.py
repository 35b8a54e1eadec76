"""What every service call works with: the settings, the database and the wake-up signal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobyard.services.credentials import Credentials
from jobyard.settings import Settings
from jobyard.store.db import Database
from jobyard.store.wakeup import Wakeup


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
    """Connect to the configured database (creating the SQLite data directory if needed)."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Runtime(settings=settings, db=Database(settings.effective_database_url))


def check_database(rt: Runtime) -> None:
    """Raise if the database cannot answer a query."""
    rt.db.ping()
