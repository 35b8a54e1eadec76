"""what a package lets a launch append, and its sandbox switches

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

`packages.allowed_args` lists the forms of arguments a launch may append through
`extra_cli_args` (null: none, the default for every existing package). `packages.sandbox`
holds the package's switches for the optional sandbox (network, writable paths), and each job
keeps them as they were at launch (`jobs.sandbox`), as it keeps its argv and environment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import json_type

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("packages", sa.Column("allowed_args", json_type(), nullable=True))
    op.add_column(
        "packages", sa.Column("sandbox", json_type(), server_default="{}", nullable=False)
    )
    op.add_column("jobs", sa.Column("sandbox", json_type(), server_default="{}", nullable=False))


def downgrade() -> None:
    op.drop_column("jobs", "sandbox")
    op.drop_column("packages", "sandbox")
    op.drop_column("packages", "allowed_args")
