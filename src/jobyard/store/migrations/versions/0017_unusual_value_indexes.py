"""partial indexes of the keys whose values are nearly all one; jobs by device name, user

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Nearly every job has priority 0, no config, no begin or end time and no extra arguments, is
launched by hand and runs a command. For each such key a partial index (tenant, key, id)
holds only the jobs with another value: a launch of the usual value writes nothing to it,
and a list sorted by the key reads the other values along it and the usual one along the
customer's id index (store/segmented.py). An option is read with `->>`, as the models write
it, on both databases (SQLite 3.38 and later).

A job is due when it is launched, unless launched for later or waiting for a retry: only
those jobs, whose `run_at` differs from their `created`, are in a partial index of `run_at`,
and a list sorted by it merges them with the others read in `created` order
(store/shadowed.py).

A lab lists a device's jobs by its name (`device_name=…`, sorted by it), a user their own
jobs (`user_id=…`): those keys get the index (tenant, key, id) the other listed keys have
(migration 0009), written once, at launch. And the jobs of one package or device are
mostly read newest first (`package_name=…&sort=-created`): (tenant, key, created, id)
indexes give that order, where the (tenant, key, id) ones made the list sort every job of
the package by its creation.

On PostgreSQL the customer's index of jobs becomes (tenant, id), so that a walk of a
customer's jobs in id order reads the index alone; SQLite's index of the customer holds the
rowid already. And the indexes of a package or device id, which may be NULL (shown and
sorted as 0), hold the NULLs first, as SQLite's do: a list sorted by them walks the index
instead of sorting every job by the coalesced id.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _option(name: str) -> str:
    return f"coalesce(options ->> '{name}', '')"


# A copy of tables.UNUSUAL as it is at this revision: (name, key, condition) per database.
INDEXES = (
    ("priority", "priority", "priority != 0", "priority != 0"),
    ("automatic", "automatic", "automatic = 1", "automatic = true"),
    ("kind", "kind", "kind != 'command'", "kind != 'command'"),
    ("config_id", "target_config_id", "target_config_id IS NOT NULL", None),
    ("config_name", "config_name", "config_name != ''", None),
    *(
        (name, _option(name), f"{_option(name)} != ''", None)
        for name in ("begin_at", "end_at", "extra_cli_args")
    ),
)


NULLS_FIRST = ("package_id", "target_device_id")
NEWEST_BY = ("package_name", "package_id", "target_device_id", "device_name")


def upgrade() -> None:
    for key in ("device_name", "user_id"):
        op.create_index(f"ix_jobs_tenant_id_{key}_id", "jobs", ["tenant_id", key, "id"])
    for key in NEWEST_BY:
        op.create_index(
            f"ix_jobs_tenant_id_{key}_created_id", "jobs", ["tenant_id", key, "created", "id"]
        )
    op.execute(
        "CREATE INDEX ix_jobs_shadowed_run_at ON jobs (tenant_id, run_at, id) "
        "WHERE run_at != created"
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_index("ix_jobs_tenant_id", table_name="jobs")
        op.create_index("ix_jobs_tenant_id_id", "jobs", ["tenant_id", "id"])
        for key in NULLS_FIRST:
            op.drop_index(f"ix_jobs_tenant_id_{key}_id", table_name="jobs")
            op.execute(
                f"CREATE INDEX ix_jobs_tenant_id_{key}_nulls_first_id "
                f"ON jobs (tenant_id, {key} NULLS FIRST, id)"
            )
    for name, key, sqlite_where, pg_where in INDEXES:
        where = sqlite_where if sqlite or pg_where is None else pg_where
        op.execute(
            f"CREATE INDEX ix_jobs_unusual_{name} ON jobs (tenant_id, {key}, id) WHERE {where}"
        )


def downgrade() -> None:
    op.execute("DROP INDEX ix_jobs_shadowed_run_at")
    for key in ("device_name", "user_id"):
        op.drop_index(f"ix_jobs_tenant_id_{key}_id", table_name="jobs")
    for key in NEWEST_BY:
        op.drop_index(f"ix_jobs_tenant_id_{key}_created_id", table_name="jobs")
    for name, *_ in INDEXES:
        op.execute(f"DROP INDEX ix_jobs_unusual_{name}")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_index("ix_jobs_tenant_id_id", table_name="jobs")
        op.create_index("ix_jobs_tenant_id", "jobs", ["tenant_id"])
        for key in NULLS_FIRST:
            op.drop_index(f"ix_jobs_tenant_id_{key}_nulls_first_id", table_name="jobs")
            op.create_index(f"ix_jobs_tenant_id_{key}_id", "jobs", ["tenant_id", key, "id"])
