"""job tags carry their job's creation; the jobs of two tags at once

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

A customer's jobs of one tag are read newest first as often as by id
(`tags@>{nightly}&sort=-created`): `job_tags` carries its job's `created`, and an index
(tenant, tag, created, job_id) gives that order, where the list matched every tagged job
against the jobs' creation order.

A filter on two tags at once (`tags@>{nightly,lab}`) matched the two tags' sets of jobs:
`job_tag_pairs` holds a row for each pair of a job's tags (the first below the second, in
code point order on both databases), with the job's customer and creation, so that the
jobs of both tags are one range of its (tenant, first, second, job_id) index, or of its
(tenant, first, second, created, job_id) one. A job of k tags has k(k-1)/2 pairs; a job of
one tag or none has none. Both tables are made anew and filled from `jobs.tags`; triggers
keep them in step with the jobs, as 0015's did for `job_tags`.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

import jobyard.store.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Copy(NamedTuple):  # not a dataclass: alembic loads this file outside sys.modules
    """How a job's rows of one table are made from its JSON array of tags."""

    table: str
    columns: str  # as inserted
    values: str  # for each of `columns`, from `{row}` and the tags `{a}` (and `{b}`)
    pairs: bool  # two tags of the job a row, the first below the second, or one


# A job's rows are written anew when one of these changes (a job's creation never does by
# jobyard's own hand; a row must not keep a stale copy of it all the same).
WATCHED = ("tags", "tenant_id", "created")
WATCHED_IN_0015 = ("tags", "tenant_id")
TAGS_AS_IN_0015 = Copy(
    "job_tags", "job_id, tenant_id, tag", "{row}.id, {row}.tenant_id, {a}", False
)
TAGS = Copy(
    "job_tags",
    "job_id, tenant_id, tag, created",
    "{row}.id, {row}.tenant_id, {a}, {row}.created",
    False,
)
PAIRS = Copy(
    "job_tag_pairs",
    "job_id, tenant_id, first_tag, second_tag, created",
    "{row}.id, {row}.tenant_id, {a}, {b}, {row}.created",
    True,
)


def _sqlite_select(copy: Copy, row: str, source: str = "") -> str:
    """`source`: the table `row` is read from, with its comma ('' in a trigger)."""
    each = f"json_each({row}.tags)"
    if not copy.pairs:
        values = copy.values.format(row=row, a="a.value")
        return f"SELECT {values} FROM {source}{each} AS a"
    values = copy.values.format(row=row, a="a.value", b="b.value")
    return f"SELECT {values} FROM {source}{each} AS a, {each} AS b WHERE a.value < b.value"


def _sqlite_statements(copies: tuple[Copy, ...], watched: tuple[str, ...]) -> tuple[str, ...]:
    def inserts(row: str) -> str:
        return "".join(
            f"INSERT OR IGNORE INTO {c.table} ({c.columns}) {_sqlite_select(c, row)};"
            for c in copies
        )

    deletes = "".join(f"DELETE FROM {c.table} WHERE job_id = OLD.id;" for c in copies)
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    return (
        "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs WHEN NEW.tags <> '[]' "
        f"BEGIN {inserts('NEW')} END",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {', '.join(watched)} ON jobs "
        f"WHEN {changed} BEGIN {deletes}{inserts('NEW')} END",
        *(
            f"INSERT OR IGNORE INTO {c.table} ({c.columns}) {_sqlite_select(c, 'jobs', 'jobs, ')}"
            for c in copies
        ),
    )


def _pg_select(copy: Copy, row: str) -> str:
    each = f"jsonb_array_elements_text({row}.tags)"
    if not copy.pairs:
        values = copy.values.format(row=row, a="a")
        return f"SELECT DISTINCT {values} FROM {{source}} CROSS JOIN LATERAL {each} AS a"
    values = copy.values.format(row=row, a="a", b="b")
    # Code point order, as SQLite's and Python's: the database's collation may differ.
    return (
        f"SELECT DISTINCT {values} FROM {{source}} CROSS JOIN LATERAL {each} AS a "
        f'CROSS JOIN LATERAL {each} AS b WHERE a COLLATE "C" < b COLLATE "C"'
    )


def _pg_statements(copies: tuple[Copy, ...], watched: tuple[str, ...]) -> tuple[str, ...]:
    def inserts(row: str, source: str) -> str:
        return "".join(
            f"INSERT INTO {c.table} ({c.columns}) " + _pg_select(c, row).format(source=source) + ";"
            for c in copies
        )

    deletes = "".join(f"DELETE FROM {c.table} WHERE job_id = OLD.id;" for c in copies)
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
    return (
        # Per statement on insert: a bulk launch or COPY copies all its tags in one statement.
        "CREATE FUNCTION jobyard_copy_new_job_tags() RETURNS trigger AS $$ "
        f"BEGIN {inserts('j', 'new_jobs AS j')} RETURN NULL; END $$ LANGUAGE plpgsql",
        # Per row on update, and only of the watched columns: status changes never fire it.
        "CREATE FUNCTION jobyard_replace_job_tags() RETURNS trigger AS $$ "
        f"BEGIN {deletes}{inserts('NEW', '(SELECT 1) AS one')} "
        "RETURN NULL; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER jobs_tags_insert AFTER INSERT ON jobs "
        "REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT "
        "EXECUTE FUNCTION jobyard_copy_new_job_tags()",
        f"CREATE TRIGGER jobs_tags_update AFTER UPDATE OF {', '.join(watched)} ON jobs "
        f"FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION jobyard_replace_job_tags()",
        inserts("jobs", "jobs"),
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


def _job_column() -> sa.Column[int]:
    return sa.Column("job_id", Id, nullable=False)


def _cascade(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["job_id"], ["jobs.id"], name=op.f(f"fk_{table}_job_id_jobs"), ondelete="CASCADE"
    )


def _created() -> sa.Column[object]:
    return sa.Column("created", jobyard.store.types.UTCDateTime(timezone=True), nullable=False)


def _make_job_tags(created: bool) -> None:
    op.create_table(
        "job_tags",
        _job_column(),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        *([_created()] if created else []),
        _cascade("job_tags"),
        sa.PrimaryKeyConstraint("job_id", "tag", name=op.f("pk_job_tags")),
    )
    op.create_index("ix_job_tags_tenant_id_tag_job_id", "job_tags", ["tenant_id", "tag", "job_id"])
    if created:
        op.create_index(
            "ix_job_tags_tenant_id_tag_created_job_id",
            "job_tags",
            ["tenant_id", "tag", "created", "job_id"],
        )


def _make_job_tag_pairs() -> None:
    op.create_table(
        "job_tag_pairs",
        _job_column(),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("first_tag", sa.Text(), nullable=False),
        sa.Column("second_tag", sa.Text(), nullable=False),
        _created(),
        _cascade("job_tag_pairs"),
        sa.PrimaryKeyConstraint("job_id", "first_tag", "second_tag", name=op.f("pk_job_tag_pairs")),
    )
    op.create_index(
        "ix_job_tag_pairs_tenant_id_first_tag_second_tag_job_id",
        "job_tag_pairs",
        ["tenant_id", "first_tag", "second_tag", "job_id"],
    )
    op.create_index(
        "ix_job_tag_pairs_tenant_id_first_tag_second_tag_created_job_id",
        "job_tag_pairs",
        ["tenant_id", "first_tag", "second_tag", "created", "job_id"],
    )


def _drop_triggers() -> None:
    for statement in SQLITE_DROPS if _is_sqlite() else PG_DROPS:
        op.execute(statement)


def _fill(copies: tuple[Copy, ...], watched: tuple[str, ...]) -> None:
    """Triggers first (on PostgreSQL creating them locks `jobs` against writes until the
    migration commits), then the copy of every job's tags."""
    made = _sqlite_statements if _is_sqlite() else _pg_statements
    for statement in made(copies, watched):
        op.execute(statement)


def upgrade() -> None:
    _drop_triggers()
    op.drop_table("job_tags")
    _make_job_tags(created=True)
    _make_job_tag_pairs()
    _fill((TAGS, PAIRS), WATCHED)
    if not _is_sqlite():  # the planner's figures now, not at autovacuum's next pass
        op.execute("ANALYZE job_tags")
        op.execute("ANALYZE job_tag_pairs")


def downgrade() -> None:
    _drop_triggers()
    op.drop_table("job_tag_pairs")
    op.drop_table("job_tags")
    _make_job_tags(created=False)
    _fill((TAGS_AS_IN_0015,), WATCHED_IN_0015)
