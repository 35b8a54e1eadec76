"""the config a job runs with: `jobs.target_config_id`

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

`jobs.config_id` is the override given at launch (null: the package's); `target_config_id` is
the config the job runs with, whichever gave it, as `target_device_id` is for devices. The API
shows it as the job's `config_id`, beside `config_name`, which was always the config it runs
with. An existing job gets its override, else its package's config when that config still has
the name the job was launched with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE jobs SET target_config_id = COALESCE(config_id, (
    SELECT packages.config_id FROM packages JOIN configs ON configs.id = packages.config_id
    WHERE packages.id = jobs.package_id AND configs.name = jobs.config_name
))
"""


def upgrade() -> None:
    # No foreign key: SQLite could add one only by rebuilding `jobs` (and its triggers);
    # deleting a config clears the column instead (store/catalog.py, `delete_config`).
    op.add_column(
        "jobs",
        sa.Column(
            "target_config_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_column("jobs", "target_config_id")
