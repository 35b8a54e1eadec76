"""idempotency keys of launches

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

`idempotency_keys` holds, per customer and key, the fingerprint of the launch request that
came with it and the ids of the jobs it launched. Its primary key is what makes two
concurrent retries with one key launch once: the row is inserted in the launch's own
transaction. `created` is indexed for the retention loop, which deletes keys past a day.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import UTCDateTime, json_type

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_ids", json_type(), nullable=False),
        sa.Column("created", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_idempotency_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
