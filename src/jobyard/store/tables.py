"""The schema: SQLAlchemy Core tables. Alembic migrations must produce exactly this."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    literal_column,
    or_,
    text,
    true,
)

from jobyard.domain.statuses import JobStatus, RunStatus
from jobyard.store.types import UTCDateTime, json_type

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

JOB_STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)
RUN_STATUSES = ", ".join(f"'{s.value}'" for s in RunStatus)
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def retention_columns() -> list[Column[int]]:
    """How long finished jobs are kept: days, the newest N per package, days of output."""
    return [Column(name, Integer, nullable=True) for name in RETENTION_FIELDS]


RETENTION_FIELDS = ("keep_days", "keep_last", "output_days")

# A customer. Tenant 1 is the system tenant, whose admins may act for any other.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created", UTCDateTime(), nullable=False),
    # The customer's retention of finished jobs (migration 0013; null: kept), which a
    # package's own columns of the same names override.
    *retention_columns(),
)


def tenant_column(*, index: bool = True) -> Column[int]:
    return Column("tenant_id", ForeignKey("tenants.id"), nullable=False, index=index)


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("login", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(128), nullable=False, unique=True),
    Column("scopes", json_type(), nullable=False),
    # A job token may act only on this job and dies with the job's run.
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("expires", UTCDateTime(), nullable=True),
    Column("last_used", UTCDateTime(), nullable=True),
    Column("revoked", UTCDateTime(), nullable=True),
)

# A row per kind of thing a process may remember between requests ("credentials",
# "catalog"), whose epoch triggers raise with any change to it (migration 0016); a process
# reads the epoch on every use of what it remembers (services/remembered.py).
epochs = Table(
    "epochs",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("epoch", BigInteger, nullable=False, server_default="0"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("at", UTCDateTime(), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("token_id", ForeignKey("tokens.id", ondelete="SET NULL"), nullable=True),
    Column("action", String(50), nullable=False),
    Column("object_type", String(30), nullable=False),
    Column("object_id", BigInteger, nullable=True),
    Column("detail", json_type(), nullable=False),
    Index("ix_audit_events_object", "object_type", "object_id"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("name", String(200), nullable=False),
    UniqueConstraint("tenant_id", "name"),
    Column("description", Text, nullable=False, server_default=""),
    Column("attributes", json_type(), nullable=False),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

configs = Table(
    "configs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("name", String(200), nullable=False),
    UniqueConstraint("tenant_id", "name"),
    Column("description", Text, nullable=False, server_default=""),
    Column("testvars", json_type(), nullable=False),
    Column("interfaces", json_type(), nullable=False),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

packages = Table(
    "packages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("name", String(200), nullable=False),
    UniqueConstraint("tenant_id", "name"),
    Column("description", Text, nullable=False, server_default=""),
    Column("kind", String(20), nullable=False),
    Column("command", json_type(), nullable=False),
    Column("env", json_type(), nullable=False),
    Column("timeout_seconds", Float, nullable=True),
    Column("max_attempts", Integer, nullable=False, server_default="1"),
    Column("retry_delay_seconds", Float, nullable=False, server_default="0"),
    Column("rerun_lost", Boolean, nullable=False, server_default=text("true")),
    # How the wait before another attempt grows (migration 0012).
    Column("retry_backoff", String(20), nullable=False, server_default="fixed"),
    Column("retry_delay_max_seconds", Float, nullable=True),
    Column("retry_jitter", Float, nullable=False, server_default="0"),
    *retention_columns(),
    Column("concurrency_limit", Integer, nullable=True),
    Column("config_id", ForeignKey("configs.id", ondelete="RESTRICT"), nullable=True),
    Column("device_id", ForeignKey("devices.id", ondelete="RESTRICT"), nullable=True),
    Column("positive_results", json_type(), nullable=False),
    Column("negative_results", json_type(), nullable=True),
    Column("tags", json_type(), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    # Arguments a launch may append (`extra_cli_args` beyond -testvar); null allows none.
    Column("allowed_args", json_type(), nullable=True),
    # The package's switches for the optional sandbox (network, writable paths).
    Column("sandbox", json_type(), nullable=False, server_default="{}"),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    CheckConstraint("kind IN ('command', 'external')", name="kind"),
    CheckConstraint("max_attempts >= 1", name="max_attempts"),
)

# Tables and indexes that exist on one database only (Alembic's comparison does not read
# `ddl_if`; no schema is made from the models, only by the migrations).
ONE_DATABASE = {
    "job_source_counts": "sqlite",
    "ix_job_counts_key": "sqlite",
    "ix_job_counts_tenant_id_status": "postgresql",
    "ix_job_tag_counts_key": "sqlite",
    "ix_job_tag_counts_deltas": "postgresql",
    "ix_jobs_tenant_id": "sqlite",
    "ix_jobs_tenant_id_id": "postgresql",
    "ix_jobs_tenant_id_package_id_id": "sqlite",
    "ix_jobs_tenant_id_package_id_nulls_first_id": "postgresql",
    "ix_jobs_tenant_id_target_device_id_id": "sqlite",
    "ix_jobs_tenant_id_target_device_id_nulls_first_id": "postgresql",
}


def on_database(dialect: str, name: str | None) -> bool:
    """Whether a table or an index of the models exists on a database of `dialect`."""
    return ONE_DATABASE.get(name or "", dialect) == dialect


jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Indexed with the id below: a customer's jobs in id order.
    tenant_column(index=False),
    Column("status", String(30), nullable=False),
    # A package that still has jobs can be deleted once they have ended; the job keeps its name.
    Column("package_id", ForeignKey("packages.id", ondelete="SET NULL"), nullable=True),
    Column("package_name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("device_id", ForeignKey("devices.id", ondelete="SET NULL"), nullable=True),
    Column("device_name", String(200), nullable=False, server_default=""),
    # The device the job runs against: the override, or its package's device at launch.
    Column("target_device_id", ForeignKey("devices.id", ondelete="SET NULL"), nullable=True),
    Column("config_id", ForeignKey("configs.id", ondelete="SET NULL"), nullable=True),
    Column("config_name", String(200), nullable=False, server_default=""),
    # The config the job runs with: the override, or its package's config at launch. Not a
    # foreign key (migration 0007 says why): deleting a config clears it.
    Column("target_config_id", Id, nullable=True),
    Column("options", json_type(), nullable=False),
    Column("tags", json_type(), nullable=False),
    Column("context", json_type(), nullable=False),
    Column("argv", json_type(), nullable=False),
    Column("env", json_type(), nullable=False),
    Column("timeout_seconds", Float, nullable=True),
    # The package's sandbox switches at launch, as its argv and env are.
    Column("sandbox", json_type(), nullable=False, server_default="{}"),
    Column("interfaces", json_type(), nullable=False),
    Column("interface_names", json_type(), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("run_at", UTCDateTime(), nullable=False),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("automatic", Boolean, nullable=False, server_default=text("false")),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("started", UTCDateTime(), nullable=True),
    Column("finished", UTCDateTime(), nullable=True),
    Column("current_run_id", BigInteger, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("cancel_requested", UTCDateTime(), nullable=True),
    # The final result reported while the job ran (BigChange's): it decides how the job ends.
    Column("outcome_status", String(30), nullable=True),
    Column("outcome_result", Text, nullable=True),
    CheckConstraint(f"status IN ({JOB_STATUSES})", name="status"),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_package_id", "package_id"),
    # A customer's jobs in id order, from the index alone: SQLite's index of the customer
    # holds the rowid already; PostgreSQL's needs the id (default lists, deep pages, the
    # usual segment of a sort by a key of one usual value: store/segmented.py).
    Index("ix_jobs_tenant_id", "tenant_id").ddl_if(dialect=ONE_DATABASE["ix_jobs_tenant_id"]),
    Index("ix_jobs_tenant_id_id", "tenant_id", "id").ddl_if(
        dialect=ONE_DATABASE["ix_jobs_tenant_id_id"]
    ),
)

# The keys users most list a tenant's jobs by (sorted, or filtered on), each with the id that
# breaks ties, so that such a page is a walk along one index, never a sort of every job
# (migration 0009). Every index costs each launch and each change of status: keys rarely
# listed by have none.
LISTED_BY = (
    "created",
    "finished",
    "status",
    "package_name",
    "package_id",
    "target_device_id",
    # Migration 0017: a lab lists a device's jobs by its name, a user their own jobs; both
    # are written once, at launch.
    "device_name",
    "user_id",
)
# An id that may be NULL is shown and sorted as 0, below every id: SQLite's index holds the
# NULLs first already; PostgreSQL's says so (its ascending index puts them last), and lists
# sort NULLS FIRST there (migration 0017).
NULLS_FIRST = ("package_id", "target_device_id")
# Columns an index holds after the id, which never change its order (migrations 0020, 0024). The
# index of ends holds `updated`, so that the ended jobs a list sorted by `updated` reads in
# `finished` order are told from the others without reading them, and `created` and the
# status, so that a range of ends sorted by another key, with a status or not, is read from
# it alone (store/ended_range.py). It costs no write: a claim and an end rewrite that index
# whatever it holds (both set `finished`). The index of creation holds `run_at`, so that the
# jobs due when launched, which a list sorted by `run_at` reads in `created` order, are told
# from the others without reading them (migration 0024); a launch writes it whatever it holds.
CARRIED = {"finished": ("updated", "created", "status"), "created": ("run_at",)}
for _key in LISTED_BY:
    _name = f"ix_jobs_tenant_id_{_key}_id"
    _carried = [jobs.c[name] for name in CARRIED.get(_key, ())]
    _index = Index(_name, jobs.c.tenant_id, jobs.c[_key], jobs.c.id, *_carried)
    if _key in NULLS_FIRST:
        _index.ddl_if(dialect=ONE_DATABASE[_name])
        _pg_name = f"ix_jobs_tenant_id_{_key}_nulls_first_id"
        Index(_pg_name, jobs.c.tenant_id, jobs.c[_key].nulls_first(), jobs.c.id).ddl_if(
            dialect=ONE_DATABASE[_pg_name]
        )

# The jobs of one package or device, newest first (`package_name=…&sort=-created`), as a list
# of them is most often read: (tenant, key, created, id), written once at launch (migration
# 0017). Sorted by id or by the key itself they walk the (tenant, key, id) indexes above.
# On PostgreSQL they carry the status too (migration 0019), so a package's jobs of a status
# are counted and paged from the index alone: every status change writes a new entry in every
# index of the job there (the status is indexed, so no update of it is HOT) whatever they
# hold. On SQLite an index holding the status is rewritten at each claim and end, which
# doubled what those cost, so there they do not.
LISTED_NEWEST_BY = ("package_name", "package_id", "target_device_id", "device_name")
for _key in LISTED_NEWEST_BY:
    Index(
        f"ix_jobs_tenant_id_{_key}_created_id",
        jobs.c.tenant_id,
        jobs.c[_key],
        jobs.c.created,
        jobs.c.id,
        postgresql_include=["status"],
    )

# The keys a run changes (its start, its run, its exit code), by which a list sorts
# (`sort=started`, `result_id`, `exit_code`): on PostgreSQL (migration 0022) every claim and
# end of a job writes a new entry in each of its indexes whatever they hold (its status is
# indexed, so no such update is HOT), and these three add about 45 µs of the database's CPU
# to a job's claim and end (885 → 930 µs). SQLite (migration 0025) rewrites only the indexes
# of the columns an update changes: these at a launch, a claim and an end, about 80 µs of a
# one-by-one job's 1.6 ms in the server; without them a list sorted by one of these keys
# reads and sorts every job of the customer (0.27-0.8 s over 1,000,000 jobs).
RUN_KEYS = ("started", "current_run_id", "exit_code")
for _key in RUN_KEYS:
    Index(f"ix_jobs_tenant_id_{_key}_id", jobs.c.tenant_id, jobs.c[_key], jobs.c.id)

# Claims walk pending jobs in claim order without sorting: the highest priority first, then
# the longest due (`run_at`; for a job launched to run now, its creation), then the oldest.
# The due jobs of a priority come before the ones launched for later, so a claim stops at the
# first job not due instead of stepping over all of them (migration 0026).
Index(
    "ix_jobs_claimable",
    jobs.c.priority.desc(),
    jobs.c.run_at,
    jobs.c.id,
    sqlite_where=text("status = 'pending'"),
    postgresql_where=text("status = 'pending'"),
)

# A tenant's jobs by status and creation (ties by id), walked either way without sorting
# (migration 0015: ties follow the sort's direction, so `created DESC, id` no longer fits).
# It holds `updated` after the id (migration 0020), which tells the jobs untouched since
# their launch without reading them (a list sorted by `updated`); the status changes at
# each claim and end, which rewrite this index whatever it holds.
Index(
    "ix_jobs_tenant_id_status_created",
    jobs.c.tenant_id,
    jobs.c.status,
    jobs.c.created,
    jobs.c.id,
    jobs.c.updated,
)


def job_option(name: str) -> ColumnElement[str]:
    """A job's option as text, '' where unset, written alike on both databases (SQLite 3.38
    and later reads `->>` as PostgreSQL does), so that an index of it serves a list."""
    read = jobs.c.options.op("->>", return_type=String())(literal_column(f"'{name}'"))
    return func.coalesce(read, literal_column("''"), type_=String())


def _literal(value: int | str) -> ColumnElement[Any]:
    # A constant in an index's WHERE must reach the database as written there, not bound:
    # neither database proves a partial index's condition from a parameter's value.
    return literal_column(repr(value) if isinstance(value, str) else str(value))


# Keys whose values are nearly all one: the jobs with another value, and only those, are in a
# partial index (tenant, key, id), which a launch of the usual value never writes; a list
# sorted by such a key reads it in segments (store/segmented.py, migration 0017). The
# conditions are the indexes' own: a query names them as written here to use the index.
UNUSUAL = {
    "priority": (jobs.c.priority, jobs.c.priority != _literal(0)),
    "automatic": (jobs.c.automatic, jobs.c.automatic == true()),
    "kind": (jobs.c.kind, jobs.c.kind != _literal("command")),
    "config_id": (jobs.c.target_config_id, jobs.c.target_config_id.is_not(None)),
    "config_name": (jobs.c.config_name, jobs.c.config_name != _literal("")),
    **{
        name: (job_option(name), job_option(name) != _literal(""))
        for name in ("begin_at", "end_at", "extra_cli_args")
    },
}
# A job is due when launched unless launched for later or waiting for a retry: only those
# jobs are in the partial index of `run_at`; a list sorted by it merges them with the others
# in `created` order (store/shadowed.py, migration 0017).
RUN_AT_DIFFERS = jobs.c.run_at != jobs.c.created
Index(
    "ix_jobs_shadowed_run_at",
    jobs.c.tenant_id,
    jobs.c.run_at,
    jobs.c.id,
    sqlite_where=RUN_AT_DIFFERS,
    postgresql_where=RUN_AT_DIFFERS,
)
# A job's `updated` is its `finished` once it has ended (the end stamps both) and its
# `created` while it waits untouched since its launch; nothing changes an ended job. Only
# the other jobs (running, waiting for a retry, edited, and any changed after their end)
# are in the partial index of `updated`, and a list sorted by it merges them with the ended
# ones read in `finished` order and the untouched ones in `created` order
# (store/shadowed.py, migration 0020). A job's entry there is written at its claim and
# removed at its end: a launch writes nothing to it.
UPDATED_AS_FINISHED = and_(jobs.c.finished.is_not(None), jobs.c.updated == jobs.c.finished)
UPDATED_AS_CREATED = and_(jobs.c.status == _literal("pending"), jobs.c.updated == jobs.c.created)
UPDATED_DIFFERS = and_(
    or_(jobs.c.finished.is_(None), jobs.c.updated != jobs.c.finished),
    or_(jobs.c.status != _literal("pending"), jobs.c.updated != jobs.c.created),
)
Index(
    "ix_jobs_shadowed_updated",
    jobs.c.tenant_id,
    jobs.c.updated,
    jobs.c.id,
    # Its condition's, so that a walk of it reads no job.
    jobs.c.finished,
    jobs.c.status,
    jobs.c.created,
    sqlite_where=UPDATED_DIFFERS,
    postgresql_where=UPDATED_DIFFERS,
)
for _key, (_column, _unusual) in UNUSUAL.items():
    Index(
        f"ix_jobs_unusual_{_key}",
        jobs.c.tenant_id,
        _column,
        jobs.c.id,
        sqlite_where=_unusual,
        postgresql_where=_unusual,
    )


# How many jobs each tenant has in each status, kept exact by triggers on `jobs` (migration
# 0002), so that a list's total need not count the jobs. A (tenant, status) may have several
# rows on PostgreSQL, where writers append deltas instead of waiting on one row: readers sum
# them. Derived data, so no foreign key.
job_counts = Table(
    "job_counts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("status", String(30), nullable=False),
    Column("n", BigInteger, nullable=False),
    # SQLite's row per key, upserted by its triggers (migration 0027); PostgreSQL's deltas.
    Index("ix_job_counts_key", "tenant_id", "status", unique=True).ddl_if(
        dialect=ONE_DATABASE["ix_job_counts_key"]
    ),
    Index("ix_job_counts_tenant_id_status", "tenant_id", "status").ddl_if(
        dialect=ONE_DATABASE["ix_job_counts_tenant_id_status"]
    ),
)

# On SQLite, how many ended jobs of each customer have each status with each package and
# device, kept exact by triggers on `jobs` (migration 0021), so that the total of a package's
# or device's jobs of an ended status (`package_name=…&status=completed`) is a sum of a few
# rows, not a read of each of the package's jobs for its status. An ended job's status never
# changes, so a job is counted once, at its end. A NULL package or device id (shown as 0) is
# 0 here. PostgreSQL reads those totals from its indexes, which carry the status (migration
# 0019), and has no such table.
job_source_counts = Table(
    "job_source_counts",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("status", String(30), primary_key=True),
    Column("package_name", String(200), primary_key=True),
    Column("package_id", Integer, primary_key=True),
    Column("device_name", String(200), primary_key=True),
    Column("device_id", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# How many ended jobs of each customer have each status with each tag (`second_tag` empty)
# and each pair of tags (`first_tag` below `second_tag` in code point order, as in
# `job_tag_pairs`), kept exact by triggers on `jobs` (migration 0023), so that the total of a
# tag's jobs of an ended status (`tags@>{nightly}&status=completed`) is a sum of a few rows
# rather than a read of each tagged job for its status. SQLite keeps one row a key; on
# PostgreSQL writers append deltas, folded as `job_counts`' are, and readers sum them.
job_tag_counts = Table(
    "job_tag_counts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("status", String(30), nullable=False),
    Column("first_tag", Text, nullable=False),
    Column("second_tag", Text, nullable=False),
    Column("n", BigInteger, nullable=False),
    Index(
        "ix_job_tag_counts_key", "tenant_id", "first_tag", "second_tag", "status", unique=True
    ).ddl_if(dialect=ONE_DATABASE["ix_job_tag_counts_key"]),
    Index("ix_job_tag_counts_deltas", "tenant_id", "first_tag", "second_tag", "status").ddl_if(
        dialect=ONE_DATABASE["ix_job_tag_counts_deltas"]
    ),
)

# A job's tags, one row each with its job's customer and creation, kept by triggers on `jobs`
# (migrations 0009, 0015, 0018), so that a tag filter (`tags@>{nightly}`) reads one range of
# an index, in id or creation order, instead of every job's JSON.
job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("tag", Text, primary_key=True),
    Column("created", UTCDateTime(), nullable=False),
    Index("ix_job_tags_tenant_id_tag_job_id", "tenant_id", "tag", "job_id"),
    Index("ix_job_tags_tenant_id_tag_created_job_id", "tenant_id", "tag", "created", "job_id"),
)

# Each pair of a job's tags (`first_tag` below `second_tag` in code point order), kept by the
# same triggers (migration 0018): the jobs of two tags at once (`tags@>{nightly,lab}`) are
# one range of an index instead of the meeting of two tags' sets. A job of k tags has
# k(k-1)/2 rows; most jobs have one tag or none, and no row here.
job_tag_pairs = Table(
    "job_tag_pairs",
    metadata,
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("first_tag", Text, primary_key=True),
    Column("second_tag", Text, primary_key=True),
    Column("created", UTCDateTime(), nullable=False),
    Index(
        "ix_job_tag_pairs_tenant_id_first_tag_second_tag_job_id",
        "tenant_id",
        "first_tag",
        "second_tag",
        "job_id",
    ),
    Index(
        "ix_job_tag_pairs_tenant_id_first_tag_second_tag_created_job_id",
        "tenant_id",
        "first_tag",
        "second_tag",
        "created",
        "job_id",
    ),
)

# The interfaces a job needs, one row each, so a claim can test them in SQL.
job_interfaces = Table(
    "job_interfaces",
    metadata,
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(200), primary_key=True),
    Index("ix_job_interfaces_name", "name"),
)

# Held while a job runs: the primary key is what makes an interface exclusive.
interface_locks = Table(
    "interface_locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
)

# A worker process (embedded in `jobyard serve` or a `jobyard worker`), seen through its heartbeat.
workers = Table(
    "workers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(300), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("slots", Integer, nullable=False),
    Column("started", UTCDateTime(), nullable=False),
    Column("heartbeat", UTCDateTime(), nullable=False),
    Column("draining", Boolean, nullable=False, server_default=text("false")),
    Column("stopped", UTCDateTime(), nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("run_key", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("worker", String(300), nullable=False),
    Column("worker_id", ForeignKey("workers.id", ondelete="SET NULL"), nullable=True, index=True),
    # Renewed by the worker's heartbeat; a run whose lease lapsed is ended by the reaper.
    Column("lease_expires", UTCDateTime(), nullable=True),
    # started + the job's timeout: past it (and a margin) the reaper ends the run even if its
    # worker still renews the lease, a backstop for a worker that failed to enforce it.
    Column("deadline", UTCDateTime(), nullable=True),
    Column("process_id", Integer, nullable=False, server_default="0"),
    # When the worker claimed the job; `spawned` is when its process came to exist (null
    # until then, and for a program that could not be started).
    Column("started", UTCDateTime(), nullable=False),
    Column("spawned", UTCDateTime(), nullable=True),
    Column("finished", UTCDateTime(), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("signal", Integer, nullable=True),
    Column("output_bytes", BigInteger, nullable=False, server_default="0"),
    Column("truncated", Boolean, nullable=False, server_default=text("false")),
    # The hash of the token the run's process reports on itself with; the index holds
    # running runs only, so the token stops working when its run ends.
    Column("token_hash", String(64), nullable=True),
    CheckConstraint(f"status IN ({RUN_STATUSES})", name="status"),
    Index("ix_runs_job_id_attempt", "job_id", "attempt", unique=True),
    Index(
        "ix_runs_token_hash",
        "token_hash",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index(
        "ix_runs_lease",
        "lease_expires",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
)

run_output = Table(
    "run_output",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("stream", String(10), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_run_output_run_id_offset", "run_id", "offset"),
)

# Custom results anyone allowed appends to a job (SAYMON's), newest first.
job_results = Table(
    "job_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("payload", json_type(), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_job_results_job_id_id", "job_id", "id"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("from_status", String(30), nullable=True),
    Column("to_status", String(30), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("reason", Text, nullable=False, server_default=""),
    Index("ix_job_events_job_id", "job_id"),
)

# A package launched on a cron expression (in a named time zone) or at a fixed interval
# (migration 0010). `next_run` is null while paused; schedulers wait for the earliest.
schedules = Table(
    "schedules",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("name", String(200), nullable=False),
    UniqueConstraint("tenant_id", "name"),
    Column("description", Text, nullable=False, server_default=""),
    Column(
        "package_id", ForeignKey("packages.id", ondelete="RESTRICT"), nullable=False, index=True
    ),
    Column("device_id", ForeignKey("devices.id", ondelete="RESTRICT"), nullable=True, index=True),
    Column("config_id", ForeignKey("configs.id", ondelete="RESTRICT"), nullable=True, index=True),
    Column("options", json_type(), nullable=False),
    Column("context", json_type(), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("cron", String(200), nullable=True),
    Column("interval_seconds", Integer, nullable=True),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("misfire", String(20), nullable=False, server_default="skip"),
    Column("skip_if_running", Boolean, nullable=False, server_default=text("false")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("next_run", UTCDateTime(), nullable=True),
    Column("last_fire_time", UTCDateTime(), nullable=True),
    # Not a foreign key: the job may be deleted (by hand, or by retention) before the next fire.
    Column("last_job_id", BigInteger, nullable=True),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    CheckConstraint("misfire IN ('skip', 'run_once')", name="misfire"),
    CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="timing"),
    Index("ix_schedules_next_run", "next_run"),
)

# One row per fire time of a schedule: its primary key is what makes a fire time launch one
# job however many schedulers race for it, inserted in the transaction that launches the job.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule_id", ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column("fire_time", UTCDateTime(), primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("job_id", ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("note", Text, nullable=False, server_default=""),
    Column("at", UTCDateTime(), nullable=False),
)

# A launch's Idempotency-Key per customer (migration 0011): the fingerprint of the request it
# came with and the jobs it launched, inserted in the launch's transaction, so that a retry
# with the same key waits for the first (PostgreSQL) or sees it (SQLite) and answers the
# same jobs. A key older than a day is taken anew; retention deletes the old ones.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("job_ids", json_type(), nullable=False),
    Column("created", UTCDateTime(), nullable=False, index=True),
)

# How far retention has deleted output, per customer and output-days value (migration
# 0013): finished jobs are swept in order of their end, each value from its own mark, so
# that a sweep never reads again what it already went through. A customer's marks are
# forgotten (and its jobs swept again) when its retention changes.
retention_marks = Table(
    "retention_marks",
    metadata,
    Column("tenant_id", ForeignKey("tenants.id"), primary_key=True),
    Column("output_days", Integer, primary_key=True),
    Column("finished", UTCDateTime(), nullable=False),
    Column("job_id", BigInteger, nullable=False),
)

# A customer's subscription to job events, optionally of one package (migration 0014).
# `secret` signs every delivery (HMAC-SHA256): it is shown once, when the webhook is made, and
# stored sealed (AES-GCM) under a key derived from the server's (services/sealing.py), so a
# copy of the database alone does not give it away; `secret_hint` is its end, for reads.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False),
    Column("package_id", ForeignKey("packages.id", ondelete="RESTRICT"), nullable=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("events", json_type(), nullable=False),
    Column("secret", Text, nullable=False),
    Column("secret_hint", String(8), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text, nullable=True),
    # Deliveries that failed in a row (every try used up); past the limit it is disabled.
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    # The job events trigger looks for an enabled webhook of the job's customer here.
    Index("ix_webhooks_tenant_id_enabled", "tenant_id", "enabled"),
    Index("ix_webhooks_package_id", "package_id"),
)

# Events to notify, written by a trigger on `job_events` in the transaction of the status
# change (and by an outcome's), moved into deliveries by the dispatcher. Not foreign keys:
# the event outlives a job deleted before it is dispatched.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("tenant_id", BigInteger, nullable=False),
    Column("package_id", BigInteger, nullable=True),
    Column("event", String(40), nullable=False),
    Column("status", String(30), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# One event for one webhook: its payload, where its tries stand, and the latest answer.
# A pending delivery is sent once `next_attempt` is past; a sender that takes it moves
# `next_attempt` on by a lease, so that a sender that dies leaves it to be tried again.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(40), nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("payload", json_type(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("delivered", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    Index("ix_webhook_deliveries_created", "created"),  # retention deletes the old ones
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

# Every try of a delivery: the answer's status code, or why there was none.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),
)
