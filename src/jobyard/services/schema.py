"""The database schema's revision: brought up to date at every start and by `jobyard db`."""

from __future__ import annotations

from jobyard.services.runtime import Runtime
from jobyard.store import migrate


def upgrade(rt: Runtime, revision: str = "head") -> None:
    """Apply migrations up to `revision`; processes starting together take turns."""
    migrate.upgrade(rt.db, revision)


def downgrade(rt: Runtime, revision: str) -> None:
    migrate.downgrade(rt.db, revision)


def current_revision(rt: Runtime) -> str | None:
    return migrate.current_revision(rt.db)


def head_revision() -> str | None:
    """The newest revision this release knows."""
    return migrate.head_revision()
