"""job tags carry their job's customer; the status list index reads either way

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10

A tag filter (`tags@>{nightly}`) lists one customer's jobs: with the customer in `job_tags`
and an index (tenant, tag, job_id), its rows are one range of that index, so a page walks it
and the total counts it without reading a job. The table is made anew (its rows are copied
from `jobs.tags`, as 0009 did), and the triggers copy the customer too.

A list's ties now follow the direction of its last sort key, so `status=…&sort=-created`
orders by (created DESC, id DESC): the (tenant, status, created DESC, id) index of 0002 no
longer gives that order, and (tenant, status, created, id), read backwards, does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _sqlite_copy(columns: str, values: str) -> str:
    return f"INSERT OR IGNORE INTO job_tags ({columns}) SELECT {values} FROM json_each(NEW.tags) AS tag;"


def _sqlite_triggers(columns: str, values: str, watched: str) -> tuple[str, ...]:
    copy = _sqlite_copy(columns, values)
    return (
        f"CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs WHEN NEW.tags <> '[]' BEGIN {copy} END",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {watched} ON jobs "
        f"WHEN OLD.tags IS NOT NEW.tags OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN "
        f"DELETE FROM job_tags WHERE job_id = OLD.id; {copy} END",
    )


SQLITE_NEW = _sqlite_triggers(
    "job_id, tenant_id, tag", "NEW.id, NEW.tenant_id, tag.value", "tags, tenant_id"
)
SQLITE_OLD = (  # 0009's
    "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs WHEN NEW.tags <> '[]' BEGIN "
    + _sqlite_copy("job_id, tag", "NEW.id, tag.value")
    + " END",
    "CREATE TRIGGER jobs_tags_update AFTER UPDATE OF tags ON jobs "
    "WHEN OLD.tags IS NOT NEW.tags BEGIN "
    "DELETE FROM job_tags WHERE job_id = OLD.id; "
    + _sqlite_copy("job_id, tag", "NEW.id, tag.value")
    + " END",
)
SQLITE_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert",
    "DROP TRIGGER IF EXISTS jobs_tags_update",
)
SQLITE_BACKFILL = (
    "INSERT OR IGNORE INTO job_tags ({columns}) "
    "SELECT {values} FROM jobs, json_each(jobs.tags) AS tag"
)


def _pg_functions(columns: str, values: str) -> tuple[str, ...]:
    return (
        # Per statement on insert: a bulk launch or COPY copies all its tags in one statement.
        "CREATE FUNCTION jobyard_copy_new_job_tags() RETURNS trigger AS $$ "
        f"BEGIN INSERT INTO job_tags ({columns}) SELECT DISTINCT {values.format(row='j')} "
        "FROM new_jobs AS j CROSS JOIN LATERAL jsonb_array_elements_text(j.tags) AS tag; "
        "RETURN NULL; END $$ LANGUAGE plpgsql",
        # Per row on update, and only of the tags or the customer: status changes never fire it.
        "CREATE FUNCTION jobyard_replace_job_tags() RETURNS trigger AS $$ "
        "BEGIN DELETE FROM job_tags WHERE job_id = OLD.id; "
        f"INSERT INTO job_tags ({columns}) SELECT DISTINCT {values.format(row='NEW')} "
        "FROM jsonb_array_elements_text(NEW.tags) AS tag; "
        "RETURN NULL; END $$ LANGUAGE plpgsql",
    )


def _pg_triggers(watched: str, changed: str) -> tuple[str, ...]:
    return (
        "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs "
        "REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT "
        "EXECUTE FUNCTION jobyard_copy_new_job_tags()",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {watched} ON jobs FOR EACH ROW "
        f"WHEN ({changed}) EXECUTE FUNCTION jobyard_replace_job_tags()",
    )


PG_NEW = _pg_functions("job_id, tenant_id, tag", "{row}.id, {row}.tenant_id, tag") + _pg_triggers(
    "tags, tenant_id",
    "OLD.tags IS DISTINCT FROM NEW.tags OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id",
)
PG_OLD = _pg_functions("job_id, tag", "{row}.id, tag") + _pg_triggers(
    "tags", "OLD.tags IS DISTINCT FROM NEW.tags"
)
PG_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert ON jobs",
    "DROP TRIGGER IF EXISTS jobs_tags_update ON jobs",
    "DROP FUNCTION IF EXISTS jobyard_copy_new_job_tags()",
    "DROP FUNCTION IF EXISTS jobyard_replace_job_tags()",
)
PG_BACKFILL = (
    "INSERT INTO job_tags ({columns}) SELECT DISTINCT {values} "
    "FROM jobs CROSS JOIN LATERAL jsonb_array_elements_text(jobs.tags) AS tag"
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _make_table(*, with_tenant: bool) -> None:
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("job_id", Id, nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
    ]
    if with_tenant:
        columns.insert(1, sa.Column("tenant_id", sa.Integer(), nullable=False))
    op.create_table(
        "job_tags",
        *columns,
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "tag", name=op.f("pk_job_tags")),
    )


def _replace(*, with_tenant: bool) -> None:
    """Make `job_tags` anew in the given shape: triggers first (on PostgreSQL creating them
    locks `jobs` against writes until the migration commits), then the copy of every job's
    tags."""
    sqlite = _is_sqlite()
    for statement in SQLITE_DROPS if sqlite else PG_DROPS:
        op.execute(statement)
    op.drop_table("job_tags")
    _make_table(with_tenant=with_tenant)
    if with_tenant:
        op.create_index(
            "ix_job_tags_tenant_id_tag_job_id", "job_tags", ["tenant_id", "tag", "job_id"]
        )
        columns, sqlite_values, pg_values = (
            "job_id, tenant_id, tag",
            "jobs.id, jobs.tenant_id, tag.value",
            "jobs.id, jobs.tenant_id, tag",
        )
    else:
        op.create_index("ix_job_tags_tag_job_id", "job_tags", ["tag", "job_id"])
        columns, sqlite_values, pg_values = "job_id, tag", "jobs.id, tag.value", "jobs.id, tag"
    if sqlite:
        for statement in SQLITE_NEW if with_tenant else SQLITE_OLD:
            op.execute(statement)
        op.execute(SQLITE_BACKFILL.format(columns=columns, values=sqlite_values))
    else:
        for statement in PG_NEW if with_tenant else PG_OLD:
            op.execute(statement)
        op.execute(PG_BACKFILL.format(columns=columns, values=pg_values))


STATUS_CREATED = "ix_jobs_tenant_id_status_created"


def _status_created(created: sa.ColumnElement[object] | str) -> None:
    op.drop_index(STATUS_CREATED, table_name="jobs")
    op.create_index(STATUS_CREATED, "jobs", ["tenant_id", "status", created, "id"])


def upgrade() -> None:
    _replace(with_tenant=True)
    _status_created("created")


def downgrade() -> None:
    _status_created(sa.literal_column("created DESC"))
    _replace(with_tenant=False)
