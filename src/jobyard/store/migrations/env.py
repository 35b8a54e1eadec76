"""Alembic environment: runs on the connection that `jobyard.store.migrate` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from jobyard.store.tables import metadata, on_database


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=lambda _obj, name, kind, *_: (
            kind != "index" or on_database(connection.dialect.name, name)
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `jobyard db upgrade`, not the alembic command")
run_migrations(connection)
