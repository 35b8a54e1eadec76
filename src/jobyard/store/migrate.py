"""Schema migrations with Alembic, run programmatically on start-up and by `jobyard db`."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from jobyard.store.db import LIMITS_OFF, Database

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


MIGRATION_LOCK_KEY = 0x6A6F6279  # "joby": API replicas and workers starting together queue here


def _without_limits(conn: Connection) -> None:
    """A migration may rewrite a table or wait for a busy one: the lock, statement and idle
    timeouts of every other transaction do not apply to it (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        for statement in LIMITS_OFF:
            conn.exec_driver_sql(statement)


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to `revision` (the newest by default). On PostgreSQL an advisory
    lock makes processes that start at the same time migrate one after the other."""
    config = alembic_config()
    with db.engine.begin() as conn:
        _without_limits(conn)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    config = alembic_config()
    with db.engine.begin() as conn:
        _without_limits(conn)
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
