"""schedules and their fire times

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

`schedules` launch a package on a cron expression in a named time zone, or at a fixed
interval. `schedule_fires` holds one row per fire time, keyed by (schedule, fire time): the
scheduler inserts it in the transaction that launches the fire's job, so however many
schedulers race (API servers and workers on PostgreSQL, restarts), a fire time launches one
job. A package, device or config that a schedule names cannot be deleted (RESTRICT).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import UTCDateTime, json_type

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("package_id", Id, nullable=False),
        sa.Column("device_id", Id, nullable=True),
        sa.Column("config_id", Id, nullable=True),
        sa.Column("options", json_type(), nullable=False),
        sa.Column("context", json_type(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), server_default="UTC", nullable=False),
        sa.Column("misfire", sa.String(20), server_default="skip", nullable=False),
        sa.Column("skip_if_running", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("next_run", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_fire_time", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("misfire IN ('skip', 'run_once')", name=op.f("ck_schedules_misfire")),
        sa.CheckConstraint(
            "(cron IS NULL) <> (interval_seconds IS NULL)", name=op.f("ck_schedules_timing")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_schedules_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_schedules_package_id_packages"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_schedules_device_id_devices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["configs.id"],
            name=op.f("fk_schedules_config_id_configs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_schedules_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_schedules_tenant_id_name")),
    )
    for column in ("tenant_id", "package_id", "device_id", "config_id"):
        op.create_index(f"ix_schedules_{column}", "schedules", [column])
    op.create_index("ix_schedules_next_run", "schedules", ["next_run"])
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", Id, nullable=False),
        sa.Column("fire_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("job_id", Id, nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_schedule_fires_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("schedule_id", "fire_time", name=op.f("pk_schedule_fires")),
    )
    op.create_index("ix_schedule_fires_job_id", "schedule_fires", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_fires_job_id", table_name="schedule_fires")
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_next_run", table_name="schedules")
    for column in ("tenant_id", "package_id", "device_id", "config_id"):
        op.drop_index(f"ix_schedules_{column}", table_name="schedules")
    op.drop_table("schedules")
