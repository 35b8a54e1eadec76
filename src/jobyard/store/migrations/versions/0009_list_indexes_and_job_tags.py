"""list indexes and job tags

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

A tenant's jobs are listed by many keys: each key a list sorts or filters by gets an index
(tenant, key, id), so that a page walks one index in the list's order instead of sorting
every job. `ix_jobs_created` goes: (tenant, created, id) serves every list that used it.

`job_tags` holds each job's tags, one row each, for tag filters (`tags@>{nightly}`): triggers
keep it in step with `jobs.tags` on every insert and every change of the tags, whichever
code path writes them; a job's rows go with it (ON DELETE CASCADE). Existing jobs are copied
in after the triggers exist, so that a launch during the migration is not missed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# A copy of tables.LISTED_BY as it is at this revision: a migration keeps saying what it did,
# whatever the models become later.
LISTED_BY = (
    "created",
    "finished",
    "status",
    "package_name",
    "package_id",
    "target_device_id",
)

SQLITE_COPY_TAGS = (
    "INSERT OR IGNORE INTO job_tags (job_id, tag) "
    "SELECT {row}.id, tag.value FROM json_each({row}.tags) AS tag;"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs WHEN NEW.tags <> '[]' BEGIN "
    + SQLITE_COPY_TAGS.format(row="NEW")
    + " END",
    "CREATE TRIGGER jobs_tags_update AFTER UPDATE OF tags ON jobs "
    "WHEN OLD.tags IS NOT NEW.tags BEGIN "
    "DELETE FROM job_tags WHERE job_id = OLD.id; " + SQLITE_COPY_TAGS.format(row="NEW") + " END",
)
SQLITE_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert",
    "DROP TRIGGER IF EXISTS jobs_tags_update",
)
SQLITE_BACKFILL = (
    "INSERT OR IGNORE INTO job_tags (job_id, tag) "
    "SELECT jobs.id, tag.value FROM jobs, json_each(jobs.tags) AS tag"
)

PG_COPY_TAGS = (
    "INSERT INTO job_tags (job_id, tag) SELECT DISTINCT j.id, tag "
    "FROM {rows} AS j CROSS JOIN LATERAL jsonb_array_elements_text(j.tags) AS tag"
)
PG_FUNCTIONS = (
    # Per statement on insert: a bulk launch or COPY copies all its tags in one statement.
    "CREATE FUNCTION jobyard_copy_new_job_tags() RETURNS trigger AS $$ "
    "BEGIN " + PG_COPY_TAGS.format(rows="new_jobs") + "; RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
    # Per row on update, and only of the tags (an edit): status changes never fire it.
    "CREATE FUNCTION jobyard_replace_job_tags() RETURNS trigger AS $$ "
    "BEGIN "
    "DELETE FROM job_tags WHERE job_id = OLD.id; "
    "INSERT INTO job_tags (job_id, tag) "
    "SELECT DISTINCT NEW.id, tag FROM jsonb_array_elements_text(NEW.tags) AS tag; "
    "RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
)
PG_TRIGGERS = (
    "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs "
    "REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_copy_new_job_tags()",
    "CREATE TRIGGER jobs_tags_update AFTER UPDATE OF tags ON jobs FOR EACH ROW "
    "WHEN (OLD.tags IS DISTINCT FROM NEW.tags) "
    "EXECUTE FUNCTION jobyard_replace_job_tags()",
)
PG_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert ON jobs",
    "DROP TRIGGER IF EXISTS jobs_tags_update ON jobs",
    "DROP FUNCTION IF EXISTS jobyard_copy_new_job_tags()",
    "DROP FUNCTION IF EXISTS jobyard_replace_job_tags()",
)
PG_BACKFILL = PG_COPY_TAGS.format(rows="jobs")


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    for key in LISTED_BY:
        op.create_index(f"ix_jobs_tenant_id_{key}_id", "jobs", ["tenant_id", key, "id"])
    op.drop_index("ix_jobs_created", table_name="jobs")
    op.create_table(
        "job_tags",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "tag", name=op.f("pk_job_tags")),
    )
    op.create_index("ix_job_tags_tag_job_id", "job_tags", ["tag", "job_id"])
    # Triggers first: on PostgreSQL creating them locks `jobs` against writes until this
    # transaction commits, so the tags copied below are exactly those of the jobs that exist.
    sqlite = _is_sqlite()
    for statement in SQLITE_TRIGGERS if sqlite else PG_FUNCTIONS + PG_TRIGGERS:
        op.execute(statement)
    op.execute(SQLITE_BACKFILL if sqlite else PG_BACKFILL)


def downgrade() -> None:
    for statement in SQLITE_DROPS if _is_sqlite() else PG_DROPS:
        op.execute(statement)
    op.drop_index("ix_job_tags_tag_job_id", table_name="job_tags")
    op.drop_table("job_tags")
    op.create_index("ix_jobs_created", "jobs", ["created"])
    for key in LISTED_BY:
        op.drop_index(f"ix_jobs_tenant_id_{key}_id", table_name="jobs")
