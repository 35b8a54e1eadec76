"""Alembic discipline: one head, migrations give exactly the models' schema, and they go both
ways; the database itself refuses status changes outside the transition table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import migrate, tables
from tests.integration.job_rows import job_row


def test_there_is_one_head() -> None:
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1


# SQLAlchemy reflects no index of an expression on SQLite (PostgreSQL's are compared).
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_produce_the_models_schema(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        include = lambda _obj, name, kind, *_: (  # noqa: E731
            kind not in {"index", "table"} or tables.on_database(conn.dialect.name, name)
        )
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include}
        )
        differences = compare_metadata(context, tables.metadata)
    assert differences == []


def test_downgrade_to_base_and_upgrade_again(runtime: Runtime) -> None:
    migrate.downgrade(runtime.db, "base")
    assert migrate.current_revision(runtime.db) is None
    with runtime.db.engine.connect() as conn:
        assert "jobs" not in sa.inspect(conn).get_table_names()
    migrate.upgrade(runtime.db)
    assert migrate.current_revision(runtime.db) == migrate.head_revision()


def _insert_job(runtime: Runtime, status: str) -> int:
    now = datetime.now(UTC)
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    with runtime.db.transaction() as conn:
        row = job_row(tenant_id=1, user_id=user_id, status=status, at=now)
        return int(
            conn.execute(
                sa.insert(tables.jobs).values(**row).returning(tables.jobs.c.id)
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("pending", "running", True),
        ("pending", "completed", False),
        ("running", "completed", True),
        ("completed", "running", False),
        ("cancelled", "pending", False),
        ("failed", "failed", True),  # not a change
    ],
)
def test_the_database_enforces_the_transition_table(
    runtime: Runtime, start: str, target: str, allowed: bool
) -> None:
    job_id = _insert_job(runtime, start)
    update = sa.update(tables.jobs).where(tables.jobs.c.id == job_id).values(status=target)
    if allowed:
        with runtime.db.transaction() as conn:
            conn.execute(update)
    else:
        with pytest.raises(sa.exc.DatabaseError), runtime.db.transaction() as conn:
            conn.execute(update)
    with runtime.db.read() as conn:
        stored = conn.execute(
            sa.select(tables.jobs.c.status).where(tables.jobs.c.id == job_id)
        ).scalar_one()
    assert stored == (target if allowed else start)


def test_upgrade_counts_the_jobs_already_there(runtime: Runtime) -> None:
    migrate.downgrade(runtime.db, "0001")
    with runtime.db.engine.connect() as conn:
        assert "job_counts" not in sa.inspect(conn).get_table_names()
    for status in ("pending", "pending", "running", "completed"):
        _insert_job(runtime, status)
    migrate.upgrade(runtime.db)
    counts = tables.job_counts
    with runtime.db.read() as conn:
        stored = conn.execute(
            sa.select(counts.c.status, sa.func.sum(counts.c.n)).group_by(counts.c.status)
        )
        assert {status: int(n) for status, n in stored} == {
            "pending": 2,
            "running": 1,
            "completed": 1,
        }
    _insert_job(runtime, "pending")
    with runtime.db.read() as conn:
        pending = sa.select(sa.func.sum(counts.c.n)).where(counts.c.status == "pending")
        assert conn.execute(pending).scalar_one() == 3


def _job_tags(runtime: Runtime) -> set[tuple[int, str]]:
    with runtime.db.read() as conn:
        rows = conn.execute(sa.select(tables.job_tags.c.job_id, tables.job_tags.c.tag))
        return {(int(job_id), tag) for job_id, tag in rows}


def _insert_tagged_job(runtime: Runtime, tags: list[str]) -> int:
    job_id = _insert_job(runtime, "pending")
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.jobs).where(tables.jobs.c.id == job_id).values(tags=tags))
    return job_id


def test_upgrade_copies_the_tags_of_the_jobs_already_there(runtime: Runtime) -> None:
    migrate.downgrade(runtime.db, "0008")
    with runtime.db.engine.connect() as conn:
        assert "job_tags" not in sa.inspect(conn).get_table_names()
    tagged = _insert_tagged_job(runtime, ["nightly", "lab", "nightly"])
    _insert_tagged_job(runtime, [])
    migrate.upgrade(runtime.db)
    assert _job_tags(runtime) == {(tagged, "nightly"), (tagged, "lab")}
    later = _insert_tagged_job(runtime, ["smoke"])
    assert _job_tags(runtime) == {(tagged, "nightly"), (tagged, "lab"), (later, "smoke")}
    with runtime.db.transaction() as conn:
        conn.execute(sa.delete(tables.jobs).where(tables.jobs.c.id == tagged))
    assert _job_tags(runtime) == {(later, "smoke")}


def test_upgrade_to_0015_gives_each_tag_its_jobs_customer(runtime: Runtime) -> None:
    tagged = _insert_tagged_job(runtime, ["nightly"])
    migrate.downgrade(runtime.db, "0014")
    with runtime.db.engine.connect() as conn:
        assert "tenant_id" not in {c["name"] for c in sa.inspect(conn).get_columns("job_tags")}
    migrate.upgrade(runtime.db)
    later = _insert_tagged_job(runtime, ["smoke"])
    query = sa.select(
        tables.job_tags.c.job_id, tables.job_tags.c.tenant_id, tables.jobs.c.tenant_id
    )
    with runtime.db.read() as conn:
        rows = conn.execute(query.join_from(tables.job_tags, tables.jobs)).all()
    assert {row[0] for row in rows} == {tagged, later}
    assert all(row[1] == row[2] for row in rows)


def test_upgrade_counts_the_ended_jobs_already_there_by_source_and_tags(
    runtime: Runtime,
) -> None:
    migrate.downgrade(runtime.db, "0020")
    ended = [_insert_job(runtime, "completed") for _ in range(3)]
    _insert_job(runtime, "pending")
    with runtime.db.transaction() as conn:
        for job_id, tags in zip(ended, (["b", "a", "b"], ["a"], []), strict=True):
            conn.execute(sa.update(tables.jobs).where(tables.jobs.c.id == job_id).values(tags=tags))
    migrate.upgrade(runtime.db)
    tag_counts, source_counts = tables.job_tag_counts, tables.job_source_counts
    key = (tag_counts.c.status, tag_counts.c.first_tag, tag_counts.c.second_tag)
    with runtime.db.read() as conn:
        rows = conn.execute(sa.select(*key, sa.func.sum(tag_counts.c.n)).group_by(*key))
        assert {tuple(row[:-1]): row[-1] for row in rows} == {
            ("completed", "a", ""): 2,
            ("completed", "b", ""): 1,
            ("completed", "a", "b"): 1,
        }
        if runtime.pg:
            return  # PostgreSQL reads a package's totals from its indexes
        by_status = sa.select(source_counts.c.status, sa.func.sum(source_counts.c.n))
        assert dict(conn.execute(by_status.group_by(source_counts.c.status)).all()) == {
            "completed": 3
        }


def test_upgrade_to_0027_keeps_one_count_row_a_key_on_sqlite(runtime: Runtime) -> None:
    """The key becomes unique: rows of one key are summed into one first, and the triggers
    then add to it."""
    if runtime.pg:
        pytest.skip("SQLite only: PostgreSQL's counts are delta rows")
    migrate.downgrade(runtime.db, "0026")
    _insert_job(runtime, "pending")
    counts = tables.job_counts
    with runtime.db.transaction() as conn:  # what no trigger writes, but a unique key refuses
        conn.execute(sa.insert(counts).values(tenant_id=1, status="pending", n=2))
    migrate.upgrade(runtime.db)
    _insert_job(runtime, "pending")
    job_id = _insert_job(runtime, "running")
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.update(tables.jobs).where(tables.jobs.c.id == job_id).values(status="completed")
        )
    with runtime.db.read() as conn:
        rows = conn.execute(sa.select(counts.c.status, counts.c.n).order_by(counts.c.status))
        assert [tuple(row) for row in rows] == [("completed", 1), ("pending", 4), ("running", 0)]
