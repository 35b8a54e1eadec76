"""the index of jobs by their end carries their creation

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

A range of ends (`finished>=…&finished<…`, a week of jobs) sorted by creation read each
job of the range for its `created` before sorting them: the (tenant, finished, id) index
becomes (tenant, finished, id, created), which gives both, so the sort reads the index alone.
Lists sorted by `finished` walk it as before. An end moves a job's entry once, as it did; no
other write changes these columns.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_tenant_id_finished_id_created", "jobs", ["tenant_id", "finished", "id", "created"]
    )
    op.drop_index("ix_jobs_tenant_id_finished_id", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_tenant_id_finished_id", "jobs", ["tenant_id", "finished", "id"])
    op.drop_index("ix_jobs_tenant_id_finished_id_created", table_name="jobs")
