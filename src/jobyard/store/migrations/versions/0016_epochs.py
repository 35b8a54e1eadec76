"""epochs: counters of changes to what a process may remember between requests

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

A row per kind of thing remembered, whose `epoch` triggers raise in the transaction of any
change to it; what a process read at one epoch holds while the epoch is the same, and it
reads the epoch (one row) on every use (services/remembered.py):

- `credentials`: what a token stands for. Raised by any change to a token (its
  `last_used`, written at most once a minute, included); to a user's customer, login, role
  or password; by a user or customer deleted. A user's failed logins change nothing.
- `catalog`: what a launch makes of a package, device and config. Raised by any change to
  a package, device or config, or one deleted.

So a revocation or an edit committed anywhere (another process, the command line) counts at
the next request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (epoch, table, event); `UPDATE OF` names the columns a change of which counts.
CHANGES = (
    ("credentials", "tokens", "UPDATE"),
    ("credentials", "tokens", "DELETE"),
    ("credentials", "users", "UPDATE OF tenant_id, login, role, password_hash"),
    ("credentials", "users", "DELETE"),
    ("credentials", "tenants", "DELETE"),
    ("catalog", "packages", "UPDATE"),
    ("catalog", "packages", "DELETE"),
    ("catalog", "devices", "UPDATE"),
    ("catalog", "devices", "DELETE"),
    ("catalog", "configs", "UPDATE"),
    ("catalog", "configs", "DELETE"),
)
EPOCHS = ("credentials", "catalog")


def _raise(epoch: str) -> str:
    return f"UPDATE epochs SET epoch = epoch + 1 WHERE name = '{epoch}'"


def _trigger_name(epoch: str, table: str, event: str) -> str:
    return f"{table}_{event.split(maxsplit=1)[0].lower()}_{epoch}_epoch"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "epochs",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_epochs")),
    )
    for epoch in EPOCHS:
        op.execute(f"INSERT INTO epochs (name, epoch) VALUES ('{epoch}', 0)")
    for epoch, table, event in CHANGES:
        name = _trigger_name(epoch, table, event)
        if _is_sqlite():
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {_raise(epoch)}; END")
            continue
        op.execute(
            f"CREATE FUNCTION jobyard_{name}() RETURNS trigger AS $$ "
            f"BEGIN {_raise(epoch)}; RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION jobyard_{name}()"
        )


def downgrade() -> None:
    for epoch, table, event in CHANGES:
        name = _trigger_name(epoch, table, event)
        if _is_sqlite():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            continue
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS jobyard_{name}()")
    op.drop_table("epochs")
