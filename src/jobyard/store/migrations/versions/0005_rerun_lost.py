"""whether a package's lost runs are retried

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

`packages.rerun_lost` (true for every existing package, as before) says whether a run lost
with its worker is retried like a failed one. False is a package's "never run twice": a lost
run's job ends `lost`, since its process may still have run to its end on another host.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "packages",
        sa.Column("rerun_lost", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("packages", "rerun_lost")
