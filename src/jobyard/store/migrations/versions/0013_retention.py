"""retention of finished jobs and their output

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

`keep_days`, `keep_last` and `output_days` on `tenants` (the customer's retention) and on
`packages` (a package's own, null: the customer's); all null (kept for ever) on existing
rows, as before. `retention_marks` holds how far the output sweep has gone.

On SQLite, freed pages go back to the file with `PRAGMA incremental_vacuum`, which needs
`auto_vacuum=INCREMENTAL`: new databases get it before their first table (store/sqlite.py);
an existing one keeps reusing its freed pages, and `jobyard db vacuum` (a VACUUM, with the
server stopped) converts it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FIELDS = ("keep_days", "keep_last", "output_days")


def upgrade() -> None:
    for table in ("tenants", "packages"):
        for field in FIELDS:
            op.add_column(table, sa.Column(field, sa.Integer(), nullable=True))
    op.create_table(
        "retention_marks",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("output_days", sa.Integer(), nullable=False),
        sa.Column("finished", UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_retention_marks_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "output_days", name=op.f("pk_retention_marks")),
    )


def downgrade() -> None:
    op.drop_table("retention_marks")
    for table in ("packages", "tenants"):
        for field in reversed(FIELDS):
            op.drop_column(table, field)
