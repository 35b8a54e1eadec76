"""What a process remembers while its epoch holds (`services/remembered.py`, migration 0016).
Tokens: a remembered token is served without reading its row, and any change that can make
it stand for something else or for nothing (through the services or straight in the
database, as another process would) takes effect at the next request; expiry still counts
at each one; failed logins change no epoch; unknown tokens are not remembered. Launches: a
package, device or config changed or deleted counts at the next launch, and what one
customer's launch resolved is never another's."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jobyard.domain.models import Job
from jobyard.domain.permissions import Principal, Role
from jobyard.errors import NotFound, Unauthenticated
from jobyard.services import accounts, authentication, catalog, jobs, tokens
from jobyard.services.remembered import CATALOG, CREDENTIALS, Remembered
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts as account_store
from jobyard.store import epochs, tables
from jobyard.store import jobs as job_store
from jobyard.store.key_reads import KeyReads
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def admin(runtime: Runtime) -> Principal:
    accounts.bootstrap_admin(runtime)
    return authentication.check_token(runtime, ADMIN_TOKEN).principal


def _epoch(runtime: Runtime, name: str = CREDENTIALS) -> int:
    with runtime.db.read_key() as conn:
        epoch = epochs.read_epoch(conn, name)
    assert epoch is not None
    return epoch


def _operator_token(runtime: Runtime, admin: Principal, **options: object) -> tuple[int, str]:
    user = accounts.create_user(runtime, actor=admin, login="olga", role="operator", password=None)
    issued = accounts.create_token(
        runtime,
        actor=admin,
        name="ci",
        scopes=[],
        expires=options.get("expires"),  # type: ignore[arg-type]
        user_id=user.id,
    )
    return user.id, issued.secret


def _elsewhere(runtime: Runtime, statement: str, **values: object) -> None:
    """A change committed on a connection of its own, as another process's would be."""
    engine = sa.create_engine(runtime.db.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), values)
    finally:
        engine.dispose()


def test_every_change_that_counts_raises_the_epoch(runtime: Runtime, admin: Principal) -> None:
    user_id, secret = _operator_token(runtime, admin)
    token_id = authentication.check_token(runtime, secret).principal.token_id
    changes = [
        ("UPDATE tokens SET scopes = '[]' WHERE id = :id", token_id),
        ("UPDATE tokens SET expires = :now WHERE id = :id", token_id),
        ("UPDATE tokens SET revoked = :now WHERE id = :id", token_id),
        ("UPDATE tokens SET last_used = :now WHERE id = :id", token_id),
        ("UPDATE users SET role = 'viewer' WHERE id = :id", user_id),
        ("UPDATE users SET password_hash = 'x' WHERE id = :id", user_id),
        ("UPDATE users SET login = 'olga2' WHERE id = :id", user_id),
        ("DELETE FROM tokens WHERE id = :id", token_id),
        ("DELETE FROM users WHERE id = :id", user_id),
    ]
    for statement, row in changes:
        before = _epoch(runtime)
        _elsewhere(runtime, statement, id=row, now=utcnow())
        assert _epoch(runtime) > before, statement
    tenant = accounts.create_tenant(runtime, actor=admin, name="gone")
    before = _epoch(runtime)
    _elsewhere(runtime, "DELETE FROM tenants WHERE id = :id", id=tenant)
    assert _epoch(runtime) > before


def test_failed_logins_change_no_epoch(runtime: Runtime, admin: Principal) -> None:
    user_id, _ = _operator_token(runtime, admin)
    before = _epoch(runtime)
    _elsewhere(runtime, "UPDATE users SET failed_logins = 3 WHERE id = :id", id=user_id)
    _elsewhere(
        runtime, "UPDATE users SET locked_until = :now WHERE id = :id", id=user_id, now=utcnow()
    )
    assert _epoch(runtime) == before


@pytest.fixture
def sqlite_runtime(runtime: Runtime) -> Runtime:
    if runtime.tokens_read is None:
        pytest.skip("tokens and launches are remembered on SQLite only")
    return runtime


@pytest.fixture
def statements(sqlite_runtime: Runtime) -> Iterator[list[str]]:
    """The statements this thread's reads by key run, from now on."""
    seen: list[str] = []
    with sqlite_runtime.db.read_key() as reads:
        assert isinstance(reads, KeyReads)
        raw: sqlite3.Connection = reads._raw
    raw.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        raw.set_trace_callback(None)


def test_a_remembered_token_is_not_read_again(
    sqlite_runtime: Runtime, admin: Principal, statements: list[str]
) -> None:
    _, secret = _operator_token(sqlite_runtime, admin)
    first = authentication.check_token(sqlite_runtime, secret).principal
    assert any("FROM tokens" in s for s in statements)
    statements.clear()
    again = authentication.check_token(sqlite_runtime, secret).principal
    assert again == first
    assert any("FROM epochs" in s for s in statements)
    assert not any("FROM tokens" in s for s in statements)


@pytest.mark.parametrize("where", ["service", "elsewhere"])
def test_a_revoked_token_is_refused_at_its_next_request(
    sqlite_runtime: Runtime, admin: Principal, where: str
) -> None:
    _, secret = _operator_token(sqlite_runtime, admin)
    token_id = authentication.check_token(sqlite_runtime, secret).principal.token_id
    assert token_id is not None
    authentication.check_token(sqlite_runtime, secret)  # remembered
    if where == "service":
        accounts.revoke_token(sqlite_runtime, actor=admin, token_id=token_id)
    else:
        _elsewhere(
            sqlite_runtime,
            "UPDATE tokens SET revoked = :now WHERE id = :id",
            id=token_id,
            now=utcnow(),
        )
    with pytest.raises(Unauthenticated):
        authentication.check_token(sqlite_runtime, secret)


def test_a_new_role_and_a_deleted_user_count_at_the_next_request(
    sqlite_runtime: Runtime, admin: Principal
) -> None:
    user_id, secret = _operator_token(sqlite_runtime, admin)
    assert authentication.check_token(sqlite_runtime, secret).principal.role is Role.OPERATOR
    accounts.edit_user(sqlite_runtime, actor=admin, user_id=user_id, role="viewer")
    assert authentication.check_token(sqlite_runtime, secret).principal.role is Role.VIEWER
    _elsewhere(sqlite_runtime, "DELETE FROM users WHERE id = :id", id=user_id)
    with pytest.raises(Unauthenticated):
        authentication.check_token(sqlite_runtime, secret)


def test_a_remembered_token_still_expires(sqlite_runtime: Runtime, admin: Principal) -> None:
    _, secret = _operator_token(sqlite_runtime, admin, expires=utcnow() + timedelta(seconds=1))
    authentication.check_token(sqlite_runtime, secret)
    epoch = _epoch(sqlite_runtime)
    time.sleep(1.1)
    with pytest.raises(Unauthenticated):
        authentication.check_token(sqlite_runtime, secret)
    assert _epoch(sqlite_runtime) == epoch  # refused from what was remembered


def test_unknown_tokens_are_not_remembered(sqlite_runtime: Runtime, admin: Principal) -> None:
    cache = sqlite_runtime.tokens_read
    assert cache is not None
    known = len(cache)
    for n in range(5):
        with pytest.raises(Unauthenticated):
            authentication.check_token(sqlite_runtime, f"jy_not-a-token-{n}")
    assert len(cache) == known


def test_beyond_its_capacity_the_oldest_go_first(sqlite_runtime: Runtime, admin: Principal) -> None:
    with sqlite_runtime.db.read_key() as conn:
        found = account_store.token_by_hash(conn, tokens.hash_token(sqlite_runtime, ADMIN_TOKEN))
    assert found is not None
    cache: Remembered[str, object] = Remembered(CREDENTIALS, capacity=3)
    for n in range(5):
        cache.put(f"hash-{n}", 7, found)
    assert len(cache) == 3
    assert cache.get("hash-1", 7) is None
    assert cache.get("hash-4", 7) == found
    assert cache.get("hash-4", 8) is None  # read at another epoch


# Launches -----------------------------------------------------------------------------------


def _package(runtime: Runtime, admin: Principal, name: str, command: list[str]) -> int:
    values = {"name": name, "command": command}
    return catalog.create_package(runtime, actor=admin, values=values).id


def _launch_argv(runtime: Runtime, actor: Principal, package_id: int) -> list[str]:
    job = jobs.launch_job(runtime, actor=actor, request=jobs.LaunchRequest(package_id))
    return list(job.argv)


def test_every_change_to_the_catalog_raises_its_epoch(runtime: Runtime, admin: Principal) -> None:
    package = _package(runtime, admin, "p", ["true"])
    device = catalog.create_device(runtime, actor=admin, values={"name": "d"}).id
    config = catalog.create_config(runtime, actor=admin, values={"name": "c"}).id
    changes = [
        ("UPDATE packages SET command = '[\"false\"]' WHERE id = :id", package),
        ("UPDATE devices SET name = 'd2' WHERE id = :id", device),
        ("UPDATE configs SET name = 'c2' WHERE id = :id", config),
        ("DELETE FROM configs WHERE id = :id", config),
        ("DELETE FROM devices WHERE id = :id", device),
        ("DELETE FROM packages WHERE id = :id", package),
    ]
    for statement, row in changes:
        before = _epoch(runtime, CATALOG)
        _elsewhere(runtime, statement, id=row)
        assert _epoch(runtime, CATALOG) > before, statement


@pytest.mark.parametrize("where", ["service", "elsewhere"])
def test_a_launch_after_an_edit_runs_the_edited_package(
    sqlite_runtime: Runtime, admin: Principal, where: str
) -> None:
    package = _package(sqlite_runtime, admin, "p", ["echo", "before"])
    assert _launch_argv(sqlite_runtime, admin, package) == ["echo", "before"]
    assert _launch_argv(sqlite_runtime, admin, package) == ["echo", "before"]  # remembered
    if where == "service":
        catalog.edit_package(
            sqlite_runtime, actor=admin, package_id=package, values={"command": ["echo", "after"]}
        )
    else:
        _elsewhere(
            sqlite_runtime,
            'UPDATE packages SET command = \'["echo", "after"]\' WHERE id = :id',
            id=package,
        )
    assert _launch_argv(sqlite_runtime, admin, package) == ["echo", "after"]


def test_a_remembered_package_once_deleted_launches_nothing(
    sqlite_runtime: Runtime, admin: Principal
) -> None:
    package = _package(sqlite_runtime, admin, "p", ["true"])
    _launch_argv(sqlite_runtime, admin, package)
    jobs.delete_jobs(sqlite_runtime, actor=admin, job_ids=[j.id for j in _all_jobs(sqlite_runtime)])
    catalog.delete_package(sqlite_runtime, actor=admin, package_id=package)
    with pytest.raises(NotFound):
        _launch_argv(sqlite_runtime, admin, package)


def test_one_customers_launch_is_never_anothers(sqlite_runtime: Runtime, admin: Principal) -> None:
    package = _package(sqlite_runtime, admin, "p", ["true"])
    _launch_argv(sqlite_runtime, admin, package)  # remembered for the system customer
    acme = accounts.create_tenant(sqlite_runtime, actor=admin, name="acme")
    with pytest.raises(NotFound):
        _launch_argv(sqlite_runtime, replace(admin, tenant_id=acme), package)


def _all_jobs(runtime: Runtime) -> list[Job]:
    with runtime.db.read() as conn:
        ids = conn.execute(sa.select(tables.jobs.c.id)).scalars().all()
        return [job_store.get_job(conn, job_id) for job_id in ids]
