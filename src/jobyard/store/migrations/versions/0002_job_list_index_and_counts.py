"""job list index and exact job counts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Lists of a tenant's jobs by status, newest first, walk one index instead of sorting; their
`links.total` reads `job_counts` instead of counting every matching job. Triggers keep
`job_counts` exact on every insert, delete and status (or tenant) change of a job. Only plain
CREATE INDEX / CREATE TRIGGER: no batch migration recreates `jobs` (which would drop 0001's
transition trigger on SQLite).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite has one writer at a time: one row per (tenant, status), updated in place.
SQLITE_ENSURE_ROW = (
    "INSERT INTO job_counts (tenant_id, status, n) SELECT {row}.tenant_id, {row}.status, 0 "
    "WHERE NOT EXISTS (SELECT 1 FROM job_counts "
    "WHERE tenant_id = {row}.tenant_id AND status = {row}.status);"
)
SQLITE_ADD = (
    "UPDATE job_counts SET n = n + {delta} "
    "WHERE tenant_id = {row}.tenant_id AND status = {row}.status;"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN "
    + SQLITE_ENSURE_ROW.format(row="NEW")
    + SQLITE_ADD.format(row="NEW", delta="1")
    + " END",
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN "
    + SQLITE_ADD.format(row="OLD", delta="-1")
    + " END",
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF status, tenant_id ON jobs "
    "WHEN OLD.status IS NOT NEW.status OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN "
    + SQLITE_ADD.format(row="OLD", delta="-1")
    + SQLITE_ENSURE_ROW.format(row="NEW")
    + SQLITE_ADD.format(row="NEW", delta="1")
    + " END",
)
SQLITE_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_count_insert",
    "DROP TRIGGER IF EXISTS jobs_count_delete",
    "DROP TRIGGER IF EXISTS jobs_count_update",
)

# PostgreSQL: concurrent writers must never wait on a shared counter row (a worker's
# transaction already holds job row locks, so such a wait could deadlock, and it would
# serialise every status change). A change appends a delta row; the rows of a (tenant,
# status) are then folded into one by whichever writer gets its advisory lock without
# waiting. Folding needs a fresh snapshot per statement, so it is skipped (left to a later
# writer) in repeatable read or serializable transactions. Readers sum the rows.
COUNT_LOCK_CLASS = 0x6A636E74  # "jcnt": the advisory lock space of the folds
PG_FUNCTIONS = (
    "CREATE FUNCTION jobyard_add_job_count(t bigint, s text, delta bigint) RETURNS void AS $$ "
    "BEGIN "
    "INSERT INTO job_counts (tenant_id, status, n) VALUES (t, s, delta); "
    "IF current_setting('transaction_isolation') = 'read committed' "
    f"AND pg_try_advisory_xact_lock({COUNT_LOCK_CLASS}, hashtext(t || ':' || s)) THEN "
    "WITH folded AS (DELETE FROM job_counts WHERE tenant_id = t AND status = s RETURNING n) "
    "INSERT INTO job_counts (tenant_id, status, n) "
    "SELECT t, s, sum(n) FROM folded HAVING sum(n) <> 0; "
    "END IF; "
    "END $$ LANGUAGE plpgsql",
    # Inserts and deletes per statement: a bulk launch or COPY adds one delta per status.
    "CREATE FUNCTION jobyard_count_jobs_changed() RETURNS trigger AS $$ "
    "DECLARE r record; "
    "BEGIN "
    "FOR r IN SELECT tenant_id, status, count(*) AS n FROM changed_jobs "
    "GROUP BY tenant_id, status ORDER BY tenant_id, status LOOP "
    "PERFORM jobyard_add_job_count(r.tenant_id, r.status, "
    "CASE TG_OP WHEN 'INSERT' THEN r.n ELSE -r.n END); "
    "END LOOP; "
    "RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
    # Status changes per statement (workers move jobs in batches): the jobs whose status or
    # tenant changed leave one delta per (tenant, status). PostgreSQL allows no transition
    # tables with `UPDATE OF`, so this runs after every UPDATE of jobs and finds the moves.
    "CREATE FUNCTION jobyard_count_jobs_moved() RETURNS trigger AS $$ "
    "DECLARE r record; "
    "BEGIN "
    "FOR r IN SELECT d.tenant_id, d.status, sum(d.delta) AS n "
    "FROM old_jobs o JOIN new_jobs n ON n.id = o.id CROSS JOIN LATERAL "
    "(VALUES (o.tenant_id, o.status, -1), (n.tenant_id, n.status, 1)) AS d(tenant_id, status, delta) "
    "WHERE o.status IS DISTINCT FROM n.status OR o.tenant_id IS DISTINCT FROM n.tenant_id "
    "GROUP BY d.tenant_id, d.status HAVING sum(d.delta) <> 0 "
    "ORDER BY d.tenant_id, d.status LOOP "
    "PERFORM jobyard_add_job_count(r.tenant_id, r.status, r.n); "
    "END LOOP; "
    "RETURN NULL; "
    "END $$ LANGUAGE plpgsql",
    "CREATE FUNCTION jobyard_count_jobs_truncated() RETURNS trigger AS $$ "
    "BEGIN DELETE FROM job_counts; RETURN NULL; END $$ LANGUAGE plpgsql",
)
PG_TRIGGERS = (
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs "
    "REFERENCING NEW TABLE AS changed_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_count_jobs_changed()",
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs "
    "REFERENCING OLD TABLE AS changed_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_count_jobs_changed()",
    "CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs "
    "REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_count_jobs_moved()",
    "CREATE TRIGGER jobs_count_truncate AFTER TRUNCATE ON jobs FOR EACH STATEMENT "
    "EXECUTE FUNCTION jobyard_count_jobs_truncated()",
)
PG_DROPS = (
    "DROP TRIGGER IF EXISTS jobs_count_insert ON jobs",
    "DROP TRIGGER IF EXISTS jobs_count_delete ON jobs",
    "DROP TRIGGER IF EXISTS jobs_count_update ON jobs",
    "DROP TRIGGER IF EXISTS jobs_count_truncate ON jobs",
    "DROP FUNCTION IF EXISTS jobyard_count_jobs_truncated()",
    "DROP FUNCTION IF EXISTS jobyard_count_jobs_moved()",
    "DROP FUNCTION IF EXISTS jobyard_count_jobs_changed()",
    "DROP FUNCTION IF EXISTS jobyard_add_job_count(bigint, text, bigint)",
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_tenant_id_status_created",
        "jobs",
        ["tenant_id", "status", sa.literal_column("created DESC"), "id"],
        unique=False,
    )
    op.create_table(
        "job_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_counts")),
    )
    op.create_index("ix_job_counts_tenant_id_status", "job_counts", ["tenant_id", "status"])
    # Triggers first: on PostgreSQL creating them locks `jobs` against writes until this
    # transaction commits, so the rows counted below are exactly those that exist.
    for statement in SQLITE_TRIGGERS if _is_sqlite() else PG_FUNCTIONS + PG_TRIGGERS:
        op.execute(statement)
    op.execute(
        "INSERT INTO job_counts (tenant_id, status, n) "
        "SELECT tenant_id, status, count(*) FROM jobs GROUP BY tenant_id, status"
    )


def downgrade() -> None:
    for statement in SQLITE_DROPS if _is_sqlite() else PG_DROPS:
        op.execute(statement)
    op.drop_index("ix_job_counts_tenant_id_status", table_name="job_counts")
    op.drop_table("job_counts")
    op.drop_index("ix_jobs_tenant_id_status_created", table_name="jobs")
