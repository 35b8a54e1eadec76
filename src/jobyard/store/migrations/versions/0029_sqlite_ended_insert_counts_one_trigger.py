"""SQLite counts a job inserted already ended with one trigger, not two

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07

`jobs_source_count_insert` (0021) and `jobs_tag_count_insert` (0023) count a job that is
inserted already ended (a copy of jobs; a launch inserts pending ones). SQLite calls every
insert trigger for every row and only then tests its `WHEN`: each call cost a launch about
30 VM steps, and a bulk launch of 10,000 jobs about 3 µs a job, for nothing. One trigger,
`jobs_ended_insert`, now does both, and its tag count statement skips a job with no tags,
as the second trigger's `WHEN` did. PostgreSQL counts inserts once a statement and keeps
its triggers.
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

# A copy of domain.statuses.TERMINAL as it is at this revision.
ENDED = "('cancelled', 'completed', 'completed_with_issues', 'failed', 'lost', 'timed_out')"
SOURCE_KEY = "tenant_id, status, package_name, package_id, device_name, device_id"
SOURCE_ADD = (
    f"INSERT INTO job_source_counts ({SOURCE_KEY}, n) VALUES (NEW.tenant_id, NEW.status, "
    "NEW.package_name, coalesce(NEW.package_id, 0), NEW.device_name, "
    "coalesce(NEW.target_device_id, 0), 1) ON CONFLICT DO UPDATE SET n = n + 1;"
)
TAG_KEY = "tenant_id, status, first_tag, second_tag"
_NEW_TAGS = "(SELECT DISTINCT value FROM json_each(NEW.tags))"
_TAG_KEYS = (
    f"SELECT NEW.tenant_id, NEW.status, a.value, '' FROM {_NEW_TAGS} AS a "
    f"UNION SELECT NEW.tenant_id, NEW.status, a.value, b.value FROM {_NEW_TAGS} AS a, "
    f"{_NEW_TAGS} AS b WHERE a.value < b.value"
)


def _tag_add(condition: str) -> str:
    # The WHERE also resolves SQLite's parsing ambiguity between a join and an upsert's ON.
    return (
        f"INSERT INTO job_tag_counts ({TAG_KEY}, n) SELECT *, 1 FROM ({_TAG_KEYS}) "
        f"WHERE {condition} ON CONFLICT ({TAG_KEY}) DO UPDATE SET n = n + 1;"
    )


TAGGED = "NEW.tags <> '[]'"
MERGED = (
    f"CREATE TRIGGER jobs_ended_insert AFTER INSERT ON jobs WHEN NEW.status IN {ENDED} "
    f"BEGIN {SOURCE_ADD}{_tag_add(TAGGED)} END"
)
# As 0021 and 0023 made them, for the downgrade.
SEPARATE = (
    "CREATE TRIGGER jobs_source_count_insert AFTER INSERT ON jobs "
    f"WHEN NEW.status IN {ENDED} BEGIN {SOURCE_ADD} END",
    "CREATE TRIGGER jobs_tag_count_insert AFTER INSERT ON jobs "
    f"WHEN NEW.status IN {ENDED} AND {TAGGED} BEGIN {_tag_add('true')} END",
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if not _is_sqlite():
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_source_count_insert")
    op.execute("DROP TRIGGER IF EXISTS jobs_tag_count_insert")
    op.execute(MERGED)


def downgrade() -> None:
    if not _is_sqlite():
        return
    op.execute("DROP TRIGGER IF EXISTS jobs_ended_insert")
    for trigger in SEPARATE:
        op.execute(trigger)
