"""Reads by key on the driver's connection (`store/key_reads.py`) give the records a
SQLAlchemy `Connection` gives, on both databases: every column type's conversion (times,
JSON, booleans, enums, numbers) included, for each kind of object read that way; and a
missing row is None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobyard.services import accounts, authentication, catalog, tokens
from jobyard.services.runtime import Runtime
from jobyard.store import accounts as account_store
from jobyard.store import catalog as catalog_store
from jobyard.store import jobs as job_store
from jobyard.store import tables
from jobyard.store.key_reads import KeyReads
from tests.conftest import ADMIN_TOKEN
from tests.integration.job_rows import job_row

AT = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_every_key_read_gives_what_a_connection_gives(runtime: Runtime) -> None:
    boot = accounts.bootstrap_admin(runtime)
    admin = authentication.check_token(runtime, ADMIN_TOKEN).principal
    package = catalog.create_package(
        runtime, actor=admin, values={"name": "p", "command": ["true"], "env": {"A": "b"}}
    ).id
    device = catalog.create_device(
        runtime, actor=admin, values={"name": "d", "attributes": {"ip": "1"}}
    ).id
    config = catalog.create_config(
        runtime, actor=admin, values={"name": "c", "testvars": {"a": "é"}}
    ).id
    with runtime.db.transaction() as conn:
        row = job_row(tenant_id=1, user_id=boot.admin_user_id, status="completed", at=AT)
        row |= {"started": AT, "finished": AT + timedelta(seconds=3), "exit_code": 0}
        job = conn.execute(sa.insert(tables.jobs).values(row).returning(tables.jobs.c.id))
        job_id = job.scalar_one()
    hashed = tokens.hash_token(runtime, ADMIN_TOKEN)
    with runtime.db.read() as conn, runtime.db.read_key() as reads:
        assert isinstance(reads, KeyReads)
        pairs = [
            (
                catalog_store.get_device(conn, device, tenant_id=1),
                catalog_store.get_device(reads, device, tenant_id=1),
            ),
            (
                catalog_store.get_config(conn, config, tenant_id=1),
                catalog_store.get_config(reads, config, tenant_id=1),
            ),
            (
                catalog_store.get_package(conn, package, tenant_id=1),
                catalog_store.get_package(reads, package, tenant_id=1),
            ),
            (job_store.get_job(conn, job_id, tenant_id=1), job_store.get_job(reads, job_id)),
            (
                account_store.token_by_hash(conn, hashed),
                account_store.token_by_hash(reads, hashed),
            ),
        ]
        missing = account_store.token_by_hash(reads, "no such hash")
    for through_connection, through_driver in pairs:
        assert through_driver is not None
        assert through_driver == through_connection
    # Converted by the column types, not left as the driver's text.
    assert isinstance(pairs[0][1].created, datetime)
    assert pairs[0][1].created.tzinfo is not None
    assert missing is None


def test_reads_by_key_leave_no_transaction_open(runtime: Runtime) -> None:
    """On PostgreSQL each read is its own snapshot, in autocommit: a connection given back
    idle in a transaction would hold back vacuum and lock waits until its next use."""
    if not runtime.pg:
        pytest.skip("PostgreSQL's pool of reads by key (SQLite's: test_thread_connections)")
    epoch = sa.select(tables.epochs.c.name).where(tables.epochs.c.name == sa.bindparam("name"))
    with runtime.db.read_key() as first, runtime.db.read_key() as second:
        for reads in (first, second):
            assert reads.execute(epoch, {"name": "nothing"}).first() is None
    with runtime.db.read() as conn:
        states = conn.execute(
            sa.text(
                "SELECT state FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        assert "idle in transaction" not in set(states)
