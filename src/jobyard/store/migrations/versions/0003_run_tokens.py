"""a run's job token lives on the run

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

A job's process reports on itself with a token that is good while its run is running. Its
hash was a row of `tokens`, written when the run began and deleted when it ended: two
statements in every worker turn, and a row with four indexes written and removed per job.
Now it is a column of the run, found through an index of running runs only, so the token
stops working when the run ends without anything deleted. Job tokens issued before this
migration are deleted: a job still running through the upgrade can no longer report on
itself (stop the workers first, as for any upgrade).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.execute("DELETE FROM tokens WHERE job_id IS NOT NULL")
    op.add_column("runs", sa.Column("token_hash", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_runs_token_hash",
        "runs",
        ["token_hash"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_token_hash", table_name="runs")
    op.drop_column("runs", "token_hash")  # SQLite drops a column in place since 3.35
