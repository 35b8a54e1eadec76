"""when a run's process came to exist: `runs.spawned`

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

`runs.started` is stamped when a worker claims the job, before any process exists; `spawned`
is when the worker saw its child process start (null until then, and for a run whose program
could not be started). Launch→spawned is the dispatch latency a user feels.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobyard.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("spawned", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "spawned")
