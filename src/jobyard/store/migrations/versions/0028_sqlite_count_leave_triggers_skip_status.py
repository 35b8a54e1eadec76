"""SQLite's triggers that take an ended job out of its counts no longer fire at claims and ends

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07

`jobs_source_count_leave` (0021) and `jobs_tag_count_leave` (0023) take an ended job's old
row out of the counts when its customer, package, device or tags change. They watched its
status too, so every claim and every end, which set the status, called them, and SQLite
loads the old row's columns they read (its tags, package, device) before their `WHEN`, which
is false there: about 28 µs of a claim's 80. An ended job's status never changes (the
transition trigger refuses it before any of these fire), so they now watch the other
columns only. PostgreSQL tests a row trigger's `WHEN` before it calls anything, and keeps
its triggers.
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# A copy of domain.statuses.TERMINAL as it is at this revision.
ENDED = "('cancelled', 'completed', 'completed_with_issues', 'failed', 'lost', 'timed_out')"
SOURCE_COLUMNS = ("tenant_id", "status", "package_name", "package_id", "device_name")
SOURCE_WATCHED = (*SOURCE_COLUMNS, "target_device_id")
TAG_WATCHED = ("tenant_id", "status", "tags")
# The leave triggers' bodies, as 0021 and 0023 made them.
SOURCE_SUBTRACT = (
    f"UPDATE job_source_counts SET n = n - 1 WHERE ({', '.join(SOURCE_COLUMNS)}, device_id) = "
    "(OLD.tenant_id, OLD.status, OLD.package_name, coalesce(OLD.package_id, 0), "
    "OLD.device_name, coalesce(OLD.target_device_id, 0));"
)
_OLD_TAGS = "(SELECT DISTINCT value FROM json_each(OLD.tags))"
TAG_SUBTRACT = (
    "UPDATE job_tag_counts SET n = n - 1 WHERE (tenant_id, status, first_tag, second_tag) IN "
    f"(SELECT OLD.tenant_id, OLD.status, a.value, '' FROM {_OLD_TAGS} AS a "
    f"UNION SELECT OLD.tenant_id, OLD.status, a.value, b.value FROM {_OLD_TAGS} AS a, "
    f"{_OLD_TAGS} AS b WHERE a.value < b.value);"
)


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in columns)


def _source_leave(watched: tuple[str, ...]) -> str:
    return (
        f"CREATE TRIGGER jobs_source_count_leave AFTER UPDATE OF {', '.join(watched)} ON jobs "
        f"WHEN OLD.status IN {ENDED} AND ({_changed(SOURCE_WATCHED)}) BEGIN {SOURCE_SUBTRACT} END"
    )


def _tag_leave(watched: tuple[str, ...]) -> str:
    return (
        f"CREATE TRIGGER jobs_tag_count_leave AFTER UPDATE OF {', '.join(watched)} ON jobs "
        f"WHEN OLD.status IN {ENDED} AND OLD.tags <> '[]' AND ({_changed(TAG_WATCHED)}) "
        f"BEGIN {TAG_SUBTRACT} END"
    )


def _but_status(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(column for column in columns if column != "status")


def _replace(source_watched: tuple[str, ...], tag_watched: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("jobs_source_count_leave", "jobs_tag_count_leave"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(_source_leave(source_watched))
    op.execute(_tag_leave(tag_watched))


def upgrade() -> None:
    _replace(_but_status(SOURCE_WATCHED), _but_status(TAG_WATCHED))


def downgrade() -> None:
    _replace(SOURCE_WATCHED, TAG_WATCHED)
