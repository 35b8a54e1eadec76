"""how a package's retry delay grows

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08

`packages.retry_backoff` (`fixed`, as before, or `exponential`), `retry_delay_max_seconds`
(the cap of a growing delay; null: none) and `retry_jitter` (the fraction of each delay that
may be taken off at random, 0 to 1). Existing packages keep their fixed delay.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain added columns, no table rebuild: on SQLite a rebuild of `packages` would drop the
    # table that jobs and schedules refer to. The service checks the values.
    op.add_column(
        "packages",
        sa.Column("retry_backoff", sa.String(20), server_default="fixed", nullable=False),
    )
    op.add_column("packages", sa.Column("retry_delay_max_seconds", sa.Float(), nullable=True))
    op.add_column(
        "packages", sa.Column("retry_jitter", sa.Float(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    for column in ("retry_jitter", "retry_delay_max_seconds", "retry_backoff"):
        op.drop_column("packages", column)
