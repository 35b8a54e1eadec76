"""a partial index of `updated` for the jobs whose `updated` is neither their `finished`
nor their `created`; the indexes of ends and of statuses hold it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

A job that has ended was last changed by its end, which stamps `updated` and `finished`
alike, and one waiting untouched since its launch has its `created` as `updated`: an index
of `updated` would be written at every launch, claim and end to serve a sort that the
indexes of `finished` and of statuses answer for nearly every job. A partial index holds
only the other jobs (running, waiting for a retry, edited, changed after their end), and a
list sorted by `updated` merges them with the ended jobs read in `finished` order and the
untouched pending ones in `created` order (store/shadowed.py), as 0017 did for `run_at`. A
launch writes nothing to it; a claim adds the job, its end removes it. Each index holds
the columns its part is told by after the id, so that no walk reads a job; a claim and an
end rewrite the indexes of ends and of statuses whatever they hold.

The index of ends holds each job's creation and status too: a range of ends sorted by
another key (`finished>=…&finished<…&sort=-created`, with a status or not) is read from it
alone and then sorted, where PostgreSQL walked every job created since, testing its end
(store/ended_range.py), and SQLite read each job of the range for its creation.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FINISHED = "ix_jobs_tenant_id_finished_id"
STATUS_CREATED = "ix_jobs_tenant_id_status_created"
DIFFERS = (
    "(finished IS NULL OR updated != finished) AND (status != 'pending' OR updated != created)"
)


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_jobs_shadowed_updated "
        f"ON jobs (tenant_id, updated, id, finished, status, created) WHERE {DIFFERS}"
    )
    op.drop_index(FINISHED, table_name="jobs")
    op.create_index(
        FINISHED, "jobs", ["tenant_id", "finished", "id", "updated", "created", "status"]
    )
    op.drop_index(STATUS_CREATED, table_name="jobs")
    op.create_index(STATUS_CREATED, "jobs", ["tenant_id", "status", "created", "id", "updated"])


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_shadowed_updated")
    op.drop_index(FINISHED, table_name="jobs")
    op.create_index(FINISHED, "jobs", ["tenant_id", "finished", "id"])
    op.drop_index(STATUS_CREATED, table_name="jobs")
    op.create_index(STATUS_CREATED, "jobs", ["tenant_id", "status", "created", "id"])
