"""counts of each customer's ended jobs by status, tag and pair of tags

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

The total of a tag's jobs of one status (`tags@>{nightly}&status=completed`) read each of
the tag's jobs for its status: 24-61 ms on SQLite and 65-120 ms on PostgreSQL for 80,000
tagged jobs. `job_tag_counts` now holds how many ended jobs a customer has of each status
with each tag (`second_tag` empty) and each pair of tags (`first_tag` below `second_tag` in
code point order, as `job_tag_pairs` holds them), kept exact by triggers, so such a total is
a sum of a few rows. As with `job_source_counts` (0021), only ended jobs are counted: a job
is counted once, at its end, and an untagged job's end writes nothing here.

SQLite keeps one row for each key. On PostgreSQL concurrent writers must never wait on a
shared row: a change appends a delta row for each key (an insert or a delete statement one
for all its jobs, as `job_counts`' triggers do), and now and then a writer folds a key's
rows into one if it gets the key's advisory lock without waiting.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# A copy of domain.statuses.TERMINAL as it is at this revision.
ENDED = "('cancelled', 'completed', 'completed_with_issues', 'failed', 'lost', 'timed_out')"
KEY = "tenant_id, status, first_tag, second_tag"
WATCHED = ("tenant_id", "status", "tags")


def _sqlite_keys(row: str) -> str:
    """A job's keys of the table: each of its tags alone, and each pair of them (a job's tags
    may repeat one; UNION counts it once)."""
    each = f"(SELECT DISTINCT value FROM json_each({row}.tags))"
    return (
        f"SELECT {row}.tenant_id, {row}.status, a.value, '' FROM {each} AS a "
        f"UNION SELECT {row}.tenant_id, {row}.status, a.value, b.value "
        f"FROM {each} AS a, {each} AS b WHERE a.value < b.value"
    )


def _sqlite_add(row: str) -> str:
    # The WHERE resolves SQLite's parsing ambiguity between a join and an upsert's ON.
    return (
        f"INSERT INTO job_tag_counts ({KEY}, n) SELECT *, 1 FROM ({_sqlite_keys(row)}) WHERE true "
        f"ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1;"
    )


SQLITE_SUBTRACT = f"UPDATE job_tag_counts SET n = n - 1 WHERE ({KEY}) IN ({_sqlite_keys('OLD')});"
SQLITE_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in WATCHED)
SQLITE_COUNTED = "{row}.status IN " + ENDED + " AND {row}.tags <> '[]'"
SQLITE_TRIGGERS = (
    "CREATE TRIGGER jobs_tag_count_insert AFTER INSERT ON jobs "
    f"WHEN {SQLITE_COUNTED.format(row='NEW')} BEGIN {_sqlite_add('NEW')} END",
    "CREATE TRIGGER jobs_tag_count_delete AFTER DELETE ON jobs "
    f"WHEN {SQLITE_COUNTED.format(row='OLD')} BEGIN {SQLITE_SUBTRACT} END",
    # A job's end, or an ended job's tags changed.
    f"CREATE TRIGGER jobs_tag_count_leave AFTER UPDATE OF {', '.join(WATCHED)} ON jobs "
    f"WHEN {SQLITE_COUNTED.format(row='OLD')} AND ({SQLITE_CHANGED}) BEGIN {SQLITE_SUBTRACT} END",
    f"CREATE TRIGGER jobs_tag_count_enter AFTER UPDATE OF {', '.join(WATCHED)} ON jobs "
    f"WHEN {SQLITE_COUNTED.format(row='NEW')} AND ({SQLITE_CHANGED}) BEGIN {_sqlite_add('NEW')} END",
)
# Each ended job's keys once (its id keeps UNION from merging two jobs' rows), then counted.
SQLITE_FILL = (
    f"INSERT INTO job_tag_counts ({KEY}, n) SELECT {KEY}, count(*) FROM ("
    "SELECT jobs.id, jobs.tenant_id, jobs.status, a.value AS first_tag, '' AS second_tag "
    "FROM jobs, json_each(jobs.tags) AS a "
    f"WHERE jobs.status IN {ENDED} AND jobs.tags <> '[]' "
    "UNION SELECT jobs.id, jobs.tenant_id, jobs.status, a.value, b.value "
    "FROM jobs, json_each(jobs.tags) AS a, json_each(jobs.tags) AS b "
    f"WHERE jobs.status IN {ENDED} AND jobs.tags <> '[]' AND a.value < b.value"
    ") GROUP BY tenant_id, status, first_tag, second_tag"
)

COUNT_LOCK_CLASS = 0x6A74636E  # "jtcn": the advisory lock space of the folds


def _pg_keys(tags: str) -> str:
    """The keys of a job's tags, code point order for the pairs as in `job_tag_pairs`."""
    each = f"jsonb_array_elements_text({tags})"
    return (
        f"SELECT a, '' AS b FROM {each} AS a UNION "
        f'SELECT a, b FROM {each} AS a CROSS JOIN {each} AS b WHERE a COLLATE "C" < b COLLATE "C"'
    )


# A key's rows are folded when its new delta's id is a multiple of this, once a transaction
# at most: a few rows a key, without a transaction that changes many jobs of one tag
# rereading all it deleted at each fold.
FOLD_EVERY = 8
FOLDED = "jobyard.tag_counts_folded"  # the keys a transaction has folded, as ",hash,"
PG_ADD = (
    "CREATE FUNCTION jobyard_add_tag_count(t bigint, s text, a text, b text, delta bigint) "
    "RETURNS void AS $$ "
    "DECLARE added bigint; "
    "key text := ',' || hashtext(t || ':' || s || ':' || a || ':' || b) || ','; "
    "BEGIN "
    f"INSERT INTO job_tag_counts ({KEY}, n) VALUES (t, s, a, b, delta) RETURNING id INTO added; "
    f"IF added % {FOLD_EVERY} = 0 "
    "AND current_setting('transaction_isolation') = 'read committed' "
    f"AND position(key IN coalesce(current_setting('{FOLDED}', true), '')) = 0 "
    f"AND pg_try_advisory_xact_lock({COUNT_LOCK_CLASS}, hashtext(key)) THEN "
    f"PERFORM set_config('{FOLDED}', coalesce(current_setting('{FOLDED}', true), '') || key, "
    "true); "
    "WITH folded AS (DELETE FROM job_tag_counts WHERE tenant_id = t AND status = s "
    "AND first_tag = a AND second_tag = b RETURNING n) "
    f"INSERT INTO job_tag_counts ({KEY}, n) SELECT t, s, a, b, sum(n) FROM folded "
    "HAVING sum(n) <> 0; "
    "END IF; "
    "END $$ LANGUAGE plpgsql"
)
COUNTED_ROW = "{row}.status IN " + ENDED + " AND {row}.tags <> '[]'::jsonb"


def _pg_row_function(name: str, row: str, delta: int) -> str:
    """A row trigger's function: a job's deltas, one a key (a job of one tag, the usual
    case, skips the set functions)."""
    return (
        f"CREATE FUNCTION jobyard_tag_count_{name}() RETURNS trigger AS $$ "
        "DECLARE r record; "
        "BEGIN "
        f"IF jsonb_array_length({row}.tags) = 1 THEN "
        f"PERFORM jobyard_add_tag_count({row}.tenant_id, {row}.status, {row}.tags ->> 0, '', "
        f"{delta}); RETURN NULL; END IF; "
        f"FOR r IN {_pg_keys(f'{row}.tags')} LOOP "
        f"PERFORM jobyard_add_tag_count({row}.tenant_id, {row}.status, r.a, r.b, {delta}); "
        "END LOOP; "
        "RETURN NULL; "
        "END $$ LANGUAGE plpgsql"
    )


# Inserts and deletes once a statement, as `job_counts`' triggers: a statement of many jobs
# (a copy, a retention sweep) adds one delta a key.
PG_CHANGED_DELTAS = (
    "SELECT j.tenant_id, j.status, k.a, k.b, "
    "CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END AS n "
    f"FROM changed_jobs AS j CROSS JOIN LATERAL ({_pg_keys('j.tags')}) AS k "
    f"WHERE {COUNTED_ROW.format(row='j')} "
    "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
)
PG_FUNCTIONS = (
    PG_ADD,
    "CREATE FUNCTION jobyard_tag_count_changed() RETURNS trigger AS $$ "
    "DECLARE r record; "
    "BEGIN "
    # Launches insert pending jobs: they leave before any tag is read.
    f"IF NOT EXISTS (SELECT FROM changed_jobs WHERE status IN {ENDED}) THEN RETURN NULL; "
    "END IF; "
    f"FOR r IN {PG_CHANGED_DELTAS} LOOP "
    "PERFORM jobyard_add_tag_count(r.tenant_id, r.status, r.a, r.b, r.n); "
    "END LOOP; "
    "RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
    _pg_row_function("enter", "NEW", 1),
    _pg_row_function("leave", "OLD", -1),
    "CREATE FUNCTION jobyard_tag_count_truncated() RETURNS trigger AS $$ "
    "BEGIN DELETE FROM job_tag_counts; RETURN NULL; END $$ LANGUAGE plpgsql",
)
PG_CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in WATCHED)
PG_TRIGGERS = (
    "CREATE TRIGGER jobs_tag_count_insert AFTER INSERT ON jobs "
    "REFERENCING NEW TABLE AS changed_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_tag_count_changed()",
    "CREATE TRIGGER jobs_tag_count_delete AFTER DELETE ON jobs "
    "REFERENCING OLD TABLE AS changed_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_tag_count_changed()",
    # A job's end, or an ended job's tags changed: row triggers whose WHEN PostgreSQL tests
    # before calling anything, so that a claim, or the end of an untagged job, costs nothing
    # (a statement trigger's function cost every UPDATE of jobs about 33 µs).
    f"CREATE TRIGGER jobs_tag_count_leave AFTER UPDATE OF {', '.join(WATCHED)} ON jobs "
    f"FOR EACH ROW WHEN ({COUNTED_ROW.format(row='OLD')} AND ({PG_CHANGED})) "
    "EXECUTE FUNCTION jobyard_tag_count_leave()",
    f"CREATE TRIGGER jobs_tag_count_enter AFTER UPDATE OF {', '.join(WATCHED)} ON jobs "
    f"FOR EACH ROW WHEN ({COUNTED_ROW.format(row='NEW')} AND ({PG_CHANGED})) "
    "EXECUTE FUNCTION jobyard_tag_count_enter()",
    "CREATE TRIGGER jobs_tag_count_truncate AFTER TRUNCATE ON jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_tag_count_truncated()",
)
PG_FILL = (
    f"INSERT INTO job_tag_counts ({KEY}, n) SELECT jobs.tenant_id, jobs.status, k.a, k.b, "
    f"count(*) FROM jobs CROSS JOIN LATERAL ({_pg_keys('jobs.tags')}) AS k "
    f"WHERE jobs.status IN {ENDED} AND jobs.tags <> '[]'::jsonb GROUP BY 1, 2, 3, 4"
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "job_tag_counts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("first_tag", sa.Text(), nullable=False),
        sa.Column("second_tag", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    columns = ["tenant_id", "first_tag", "second_tag", "status"]
    if _is_sqlite():
        op.create_index("ix_job_tag_counts_key", "job_tag_counts", columns, unique=True)
        op.execute(SQLITE_FILL)
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        return
    op.create_index("ix_job_tag_counts_deltas", "job_tag_counts", columns)
    op.execute(PG_FILL)
    for statement in (*PG_FUNCTIONS, *PG_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    if _is_sqlite():
        for name in ("insert", "delete", "leave", "enter"):
            op.execute(f"DROP TRIGGER IF EXISTS jobs_tag_count_{name}")
    else:
        for name in ("insert", "delete", "leave", "enter", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS jobs_tag_count_{name} ON jobs")
        for function in (
            "jobyard_tag_count_truncated()",
            "jobyard_tag_count_leave()",
            "jobyard_tag_count_enter()",
            "jobyard_tag_count_changed()",
            "jobyard_add_tag_count(bigint, text, text, text, bigint)",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("job_tag_counts")
