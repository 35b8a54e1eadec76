"""a partial index of `updated` for the jobs whose `updated` is not their `finished`; the
index of ends holds `updated`, `created` and the status

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

A job that has ended was last changed by its end, which stamps `updated` and `finished`
alike: an index of `updated` would be written at every launch, claim and end to serve a
sort that `finished`'s index answers for nearly every job. A partial index holds only the
jobs whose `updated` differs from their `finished` (those not ended yet, and any changed
after their end), and a list sorted by `updated` merges them with the others read in
`finished` order (store/shadowed.py), as 0017 did for `run_at`. Each index holds the other
column after the id, so that neither walk reads a job to tell which rows are its own; a
claim and an end rewrite the index of ends whatever it holds.

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


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_jobs_shadowed_updated ON jobs (tenant_id, updated, id, finished) "
        "WHERE finished IS NULL OR updated != finished"
    )
    op.drop_index(FINISHED, table_name="jobs")
    op.create_index(
        FINISHED, "jobs", ["tenant_id", "finished", "id", "updated", "created", "status"]
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_shadowed_updated")
    op.drop_index(FINISHED, table_name="jobs")
    op.create_index(FINISHED, "jobs", ["tenant_id", "finished", "id"])
