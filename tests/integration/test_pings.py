"""PostgreSQL's pooled connections are pinged before use only after being idle for a while
(`store/pings.py`): one that died while idle longer is replaced before anyone uses it; one
that died within the moment fails its next statement as the database out of reach, is
dropped, and the next read gets a live one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from jobyard.store import pings, tables
from jobyard.store.db import Database, normalise_url, transient

EPOCH = sa.select(tables.epochs.c.name).where(tables.epochs.c.name == sa.bindparam("name"))


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no server to lose a connection to")
    return database_url


def _backend(db: Database) -> int:
    with db.read_one() as conn:
        pid: int = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _read_by_key(db: Database) -> object:
    with db.read_key() as reads:
        return reads.execute(EPOCH, {"name": "nothing"}).first()


def _terminate(url: str, pid: int) -> None:
    admin = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            while conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one():
                time.sleep(0.01)
    finally:
        admin.dispose()


@pytest.fixture
def database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Database]:
    monkeypatch.setattr(pings, "IDLE_BEFORE_PING_SECONDS", request.param)
    db = Database(postgres_url)
    yield db
    db.dispose()


@pytest.mark.parametrize("database", [0.05], indirect=True)
def test_a_connection_that_died_while_idle_is_replaced_before_use(
    database: Database, postgres_url: str
) -> None:
    dead = _backend(database)
    _terminate(postgres_url, dead)
    time.sleep(0.1)
    assert _backend(database) != dead
    assert _read_by_key(database) is None


@pytest.mark.parametrize("database", [60.0], indirect=True)
def test_a_connection_that_died_a_moment_after_use_fails_once(
    database: Database, postgres_url: str
) -> None:
    dead = _backend(database)
    _terminate(postgres_url, dead)
    with pytest.raises(sa.exc.DBAPIError) as failed:
        _read_by_key(database)
    assert transient(failed.value)
    assert _backend(database) != dead  # the pool dropped it
    assert _read_by_key(database) is None


@pytest.mark.parametrize("database", [60.0], indirect=True)
def test_a_read_that_finds_the_server_gone_drops_every_pooled_connection(
    database: Database, postgres_url: str
) -> None:
    with database.read_one() as first, database.read_one() as second:
        pids = [c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in (first, second)]
    for pid in pids:
        _terminate(postgres_url, pid)
    with pytest.raises(sa.exc.DBAPIError):
        _read_by_key(database)
    assert _read_by_key(database) is None  # not on the other dead one
    assert _backend(database) not in pids
