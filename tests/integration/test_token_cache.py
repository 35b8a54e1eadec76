"""Tokens remembered while the credentials epoch holds (`services/token_cache.py`, migration
0016): a remembered token is served without reading its row, and any change that can make it
stand for something else or for nothing (through the services or straight in the database,
as another process would) takes effect at the next request; expiry still counts at each one;
failed logins change no epoch; unknown tokens are not remembered."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from jobyard.domain.permissions import Principal, Role
from jobyard.errors import Unauthenticated
from jobyard.services import accounts, authentication, tokens
from jobyard.services.runtime import Runtime, utcnow
from jobyard.services.token_cache import TokenCache
from jobyard.store import accounts as account_store
from jobyard.store.key_reads import KeyReads
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def admin(runtime: Runtime) -> Principal:
    accounts.bootstrap_admin(runtime)
    return authentication.check_token(runtime, ADMIN_TOKEN).principal


def _epoch(runtime: Runtime) -> int:
    with runtime.db.read_key() as conn:
        epoch = account_store.credentials_epoch(conn)
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
    if runtime.token_cache is None:
        pytest.skip("tokens are remembered on SQLite only")
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
    assert any("credentials_epoch" in s for s in statements)
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
    cache = sqlite_runtime.token_cache
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
    cache = TokenCache(capacity=3)
    for n in range(5):
        cache.put(f"hash-{n}", 7, found)
    assert len(cache) == 3
    assert cache.get("hash-1", 7) is None
    assert cache.get("hash-4", 7) == found
    assert cache.get("hash-4", 8) is None  # read at another epoch
