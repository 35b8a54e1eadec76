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

from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Shape(NamedTuple):  # not a dataclass: alembic loads this file outside sys.modules
    """A shape of `job_tags`: its columns and index, and what the triggers watch and copy."""

    columns: str  # as inserted
    values: str  # for each of `columns`, from `{row}` and its `tag` (a JSON array element)
    indexed: tuple[str, ...]  # the index over them
    watched: tuple[str, ...]  # the jobs columns whose change rewrites a job's rows

    @property
    def index_name(self) -> str:
        return "ix_job_tags_" + "_".join(self.indexed)

    def changed(self, differ: str) -> str:
        return " OR ".join(f"OLD.{c} {differ} NEW.{c}" for c in self.watched)


WITH_TENANT = Shape(
    "job_id, tenant_id, tag",
    "{row}.id, {row}.tenant_id, {tag}",
    ("tenant_id", "tag", "job_id"),
    ("tags", "tenant_id"),
)
AS_IN_0009 = Shape("job_id, tag", "{row}.id, {tag}", ("tag", "job_id"), ("tags",))


def _sqlite_statements(shape: Shape) -> tuple[str, ...]:
    copy = (
        f"INSERT OR IGNORE INTO job_tags ({shape.columns}) "
        f"SELECT {shape.values.format(row='NEW', tag='tag.value')} "
        "FROM json_each(NEW.tags) AS tag;"
    )
    return (
        "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs WHEN NEW.tags <> '[]' "
        f"BEGIN {copy} END",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {', '.join(shape.watched)} ON jobs "
        f"WHEN {shape.changed('IS NOT')} BEGIN DELETE FROM job_tags WHERE job_id = OLD.id; "
        f"{copy} END",
        f"INSERT OR IGNORE INTO job_tags ({shape.columns}) "
        f"SELECT {shape.values.format(row='jobs', tag='tag.value')} "
        "FROM jobs, json_each(jobs.tags) AS tag",
    )


def _pg_statements(shape: Shape) -> tuple[str, ...]:
    def copy(row: str, source: str) -> str:
        return (
            f"INSERT INTO job_tags ({shape.columns}) "
            f"SELECT DISTINCT {shape.values.format(row=row, tag='tag')} FROM {source} "
            f"CROSS JOIN LATERAL jsonb_array_elements_text({row}.tags) AS tag"
        )

    return (
        # Per statement on insert: a bulk launch or COPY copies all its tags in one statement.
        "CREATE FUNCTION jobyard_copy_new_job_tags() RETURNS trigger AS $$ "
        f"BEGIN {copy('j', 'new_jobs AS j')}; RETURN NULL; END $$ LANGUAGE plpgsql",
        # Per row on update, and only of the watched columns: status changes never fire it.
        "CREATE FUNCTION jobyard_replace_job_tags() RETURNS trigger AS $$ "
        "BEGIN DELETE FROM job_tags WHERE job_id = OLD.id; "
        f"INSERT INTO job_tags ({shape.columns}) "
        f"SELECT DISTINCT {shape.values.format(row='NEW', tag='tag')} "
        "FROM jsonb_array_elements_text(NEW.tags) AS tag; "
        "RETURN NULL; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs "
        "REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT "
        "EXECUTE FUNCTION jobyard_copy_new_job_tags()",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {', '.join(shape.watched)} ON jobs "
        f"FOR EACH ROW WHEN ({shape.changed('IS DISTINCT FROM')}) "
        "EXECUTE FUNCTION jobyard_replace_job_tags()",
        copy("jobs", "jobs"),
    )


SQLITE_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert",
    "DROP TRIGGER IF EXISTS jobs_tags_update",
)
PG_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_tags_insert ON jobs",
    "DROP TRIGGER IF EXISTS jobs_tags_update ON jobs",
    "DROP FUNCTION IF EXISTS jobyard_copy_new_job_tags()",
    "DROP FUNCTION IF EXISTS jobyard_replace_job_tags()",
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _replace(shape: Shape) -> None:
    """Make `job_tags` anew in `shape`: triggers first (on PostgreSQL creating them locks
    `jobs` against writes until the migration commits), then the copy of every job's tags."""
    sqlite = _is_sqlite()
    for statement in SQLITE_DROPS if sqlite else PG_DROPS:
        op.execute(statement)
    op.drop_table("job_tags")
    tenant = (
        [sa.Column("tenant_id", sa.Integer(), nullable=False)]
        if "tenant_id" in shape.indexed
        else []
    )
    op.create_table(
        "job_tags",
        sa.Column("job_id", Id, nullable=False),
        *tenant,
        sa.Column("tag", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "tag", name=op.f("pk_job_tags")),
    )
    op.create_index(shape.index_name, "job_tags", list(shape.indexed))
    for statement in _sqlite_statements(shape) if sqlite else _pg_statements(shape):
        op.execute(statement)


STATUS_CREATED = "ix_jobs_tenant_id_status_created"


def _status_created(created: sa.ColumnElement[object] | str) -> None:
    op.drop_index(STATUS_CREATED, table_name="jobs")
    op.create_index(STATUS_CREATED, "jobs", ["tenant_id", "status", created, "id"])


def upgrade() -> None:
    _replace(WITH_TENANT)
    _status_created("created")


def downgrade() -> None:
    _status_created(sa.literal_column("created DESC"))
    _replace(AS_IN_0009)
