"""webhooks: subscriptions, their outbox and delivery log

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09

`webhooks` are a customer's subscriptions (optionally to one package) to job events.
`webhook_outbox` holds each event to notify: a trigger on `job_events` inserts it in the
transaction that changes the job's status (a launch, a start, an end), so that a crash
between the change and its delivery loses nothing; the trigger only writes when the job's
customer has an enabled webhook, so a deployment without webhooks pays one indexed lookup.
The dispatcher moves outbox rows into `webhook_deliveries` (one per matching webhook) and
keeps every try in `webhook_attempts`; retention's sweep deletes finished deliveries after
30 days (by `created`). An outcome set while a job runs changes no status:
services/outcomes.py writes its outbox row itself.

Outbox rows carry the job's customer and package, not a foreign key: the job may be deleted
before the event is dispatched, and its event still goes out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import UTCDateTime, json_type

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The statuses a job ends with, as they are at this revision (a migration stays frozen).
FINAL = "'completed', 'completed_with_issues', 'failed', 'timed_out', 'cancelled', 'lost'"


def _event(row: str) -> str:
    """The webhook event a job event is: launched (its first), started, finished; else null
    (a retry waiting for its next attempt notifies nothing)."""
    return (
        f"CASE WHEN {row}.from_status IS NULL THEN 'job.launched' "
        f"WHEN {row}.to_status = 'running' THEN 'job.started' "
        f"WHEN {row}.to_status IN ({FINAL}) THEN 'job.finished' END"
    )


# Its first test, whether any webhook is enabled at all, spares a deployment without one the
# job's lookup on every event (a bulk launch's too).
SQLITE_TRIGGERS = (
    "CREATE TRIGGER job_events_webhook_outbox AFTER INSERT ON job_events "
    "WHEN EXISTS (SELECT 1 FROM webhooks WHERE enabled) "
    f"AND ({_event('NEW')}) IS NOT NULL AND EXISTS (SELECT 1 FROM webhooks w "
    "WHERE w.tenant_id = (SELECT tenant_id FROM jobs WHERE id = NEW.job_id) AND w.enabled) "
    "BEGIN "
    "INSERT INTO webhook_outbox (job_id, tenant_id, package_id, event, status, at) "
    f"SELECT j.id, j.tenant_id, j.package_id, {_event('NEW')}, NEW.to_status, NEW.at "
    "FROM jobs j WHERE j.id = NEW.job_id; "
    "END",
)
SQLITE_DROPS = ("DROP TRIGGER IF EXISTS job_events_webhook_outbox",)

# Per statement: workers record a batch's events in one INSERT. Without any enabled webhook
# the function stops at its first lookup.
PG_FUNCTIONS = (
    "CREATE FUNCTION jobyard_webhook_outbox() RETURNS trigger AS $$ "
    "BEGIN "
    "IF EXISTS (SELECT 1 FROM webhooks WHERE enabled) THEN "
    "INSERT INTO webhook_outbox (job_id, tenant_id, package_id, event, status, at) "
    f"SELECT j.id, j.tenant_id, j.package_id, {_event('e')}, e.to_status, e.at "
    "FROM new_events e JOIN jobs j ON j.id = e.job_id "
    f"WHERE ({_event('e')}) IS NOT NULL AND EXISTS (SELECT 1 FROM webhooks w "
    "WHERE w.tenant_id = j.tenant_id AND w.enabled) "
    "ORDER BY e.id; "
    "END IF; "
    "RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
)
PG_TRIGGERS = (
    "CREATE TRIGGER job_events_webhook_outbox AFTER INSERT ON job_events "
    "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_webhook_outbox()",
)
PG_DROPS = (
    "DROP TRIGGER IF EXISTS job_events_webhook_outbox ON job_events",
    "DROP FUNCTION IF EXISTS jobyard_webhook_outbox()",
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("package_id", Id, nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("events", json_type(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(8), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhooks_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_webhooks_package_id_packages"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_webhooks_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_tenant_id_enabled", "webhooks", ["tenant_id", "enabled"])
    op.create_index("ix_webhooks_package_id", "webhooks", ["package_id"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("package_id", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", Id, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", json_type(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_id_id", "webhook_deliveries", ["webhook_id", "id"]
    )
    op.create_index("ix_webhook_deliveries_created", "webhook_deliveries", ["created"])
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_delivery_id_id", "webhook_attempts", ["delivery_id", "id"])
    for statement in SQLITE_TRIGGERS if _is_sqlite() else PG_FUNCTIONS + PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for statement in SQLITE_DROPS if _is_sqlite() else PG_DROPS:
        op.execute(statement)
    op.drop_index("ix_webhook_attempts_delivery_id_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_created", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_webhook_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_outbox")
    op.drop_index("ix_webhooks_package_id", table_name="webhooks")
    op.drop_index("ix_webhooks_tenant_id_enabled", table_name="webhooks")
    op.drop_table("webhooks")
