"""a job's current run: `jobs.current_run_id`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

The column holds the id of the job's current run (its latest attempt). The API still calls it
`result_id`, CDRouter's name; inside, "result" means only what a job appends.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("jobs", "result_id", new_column_name="current_run_id")


def downgrade() -> None:
    op.alter_column("jobs", "current_run_id", new_column_name="result_id")
