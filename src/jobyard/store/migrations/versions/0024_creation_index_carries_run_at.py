"""the index of creation holds each job's `run_at`

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

A list sorted by `run_at` reads the jobs due when launched (`run_at` equal to `created`, nearly
all of them) along the index of creation (store/shadowed.py), and tells them from the others
by their `run_at`. PostgreSQL read each job for it, or, expecting few to match, scanned and
sorted every job (a deep page: 260-390 ms over 1,000,000 jobs). The index now holds `run_at`
after the id, so the walk reads no job. A job's `run_at` changes only when it waits for a
retry; its creation never does, and a launch writes this index whatever it holds.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

CREATED = "ix_jobs_tenant_id_created_id"


def upgrade() -> None:
    op.drop_index(CREATED, table_name="jobs")
    op.create_index(CREATED, "jobs", ["tenant_id", "created", "id", "run_at"])


def downgrade() -> None:
    op.drop_index(CREATED, table_name="jobs")
    op.create_index(CREATED, "jobs", ["tenant_id", "created", "id"])
