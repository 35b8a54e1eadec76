"""credentials_epoch: a counter of changes to what authenticates a token

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

One row, whose `epoch` triggers raise in the transaction of any change that can make a
token stand for something else or for nothing: any change to a token (its `last_used`,
written at most once a minute, included); a user's customer, login, role or password; a
user, token or customer deleted. What a token stands for, read at one epoch, holds while the
epoch is the same; a process that remembers it (services/token_cache.py) reads the epoch on
every request, so that a revocation committed anywhere (another process, the command line)
takes effect at the next request. A user's failed logins change no epoch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (table, event) pairs; `UPDATE OF` names the columns a change of which counts.
CHANGES = (
    ("tokens", "UPDATE"),
    ("tokens", "DELETE"),
    ("users", "UPDATE OF tenant_id, login, role, password_hash"),
    ("users", "DELETE"),
    ("tenants", "DELETE"),
)
RAISE = "UPDATE credentials_epoch SET epoch = epoch + 1 WHERE id = 1"


def _trigger_name(table: str, event: str) -> str:
    return f"{table}_{event.split(maxsplit=1)[0].lower()}_credentials_epoch"


def _sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} BEGIN {RAISE}; END"
        for table, event in CHANGES
    ]


PG_FUNCTION = (
    "CREATE FUNCTION jobyard_credentials_epoch() RETURNS trigger AS $$ "
    f"BEGIN {RAISE}; RETURN NULL; END $$ LANGUAGE plpgsql"
)


def _pg_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION jobyard_credentials_epoch()"
        for table, event in CHANGES
    ]


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "credentials_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_credentials_epoch_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials_epoch")),
    )
    op.execute("INSERT INTO credentials_epoch (id, epoch) VALUES (1, 0)")
    if _is_sqlite():
        for statement in _sqlite_triggers():
            op.execute(statement)
        return
    op.execute(PG_FUNCTION)
    for statement in _pg_triggers():
        op.execute(statement)


def downgrade() -> None:
    for table, event in CHANGES:
        name = _trigger_name(table, event)
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if _is_sqlite() else f" ON {table}"))
    if not _is_sqlite():
        op.execute("DROP FUNCTION IF EXISTS jobyard_credentials_epoch()")
    op.drop_table("credentials_epoch")
