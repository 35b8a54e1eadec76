"""The admin bootstrap: a token generated once, or exactly the configured one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jobyard.errors import Unauthenticated
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.settings import Settings
from jobyard.store import tables


def test_first_start_generates_a_token_once(runtime: Runtime) -> None:
    runtime.settings = Settings(**{**runtime.settings.__dict__, "admin_token": None})

    first = accounts.bootstrap_admin(runtime)
    second = accounts.bootstrap_admin(runtime)

    assert first.new_token is not None
    assert second.new_token is None
    identity = accounts.authenticate_token(runtime, first.new_token)
    assert (identity.login, identity.role) == ("admin", "admin")


def test_the_configured_token_works_and_is_stored_hashed(runtime: Runtime) -> None:
    result = accounts.bootstrap_admin(runtime)

    assert result.new_token is None
    assert accounts.authenticate_token(runtime, "test-admin-token").user_id == result.admin_user_id
    with runtime.db.read() as conn:
        stored = conn.execute(sa.select(tables.tokens.c.secret_hash)).scalars().all()
    assert "test-admin-token" not in stored
    assert accounts.hash_token(runtime, "test-admin-token") in stored


@pytest.mark.parametrize("token", ["", "wrong", "x" * 10_000])
def test_a_bad_token_is_refused(runtime: Runtime, token: str) -> None:
    accounts.bootstrap_admin(runtime)
    with pytest.raises(Unauthenticated, match="invalid token"):
        accounts.authenticate_token(runtime, token)


def _last_used(runtime: Runtime) -> object:
    with runtime.db.read() as conn:
        return conn.execute(sa.select(tables.tokens.c.last_used)).scalar_one()


def test_last_used_is_written_at_most_once_a_minute(runtime: Runtime) -> None:
    accounts.bootstrap_admin(runtime)
    first = accounts.check_token(runtime, "test-admin-token")
    assert first.touch_due  # never used yet
    accounts.authenticate_token(runtime, "test-admin-token")
    used = _last_used(runtime)
    assert used is not None

    assert not accounts.check_token(runtime, "test-admin-token").touch_due
    accounts.authenticate_token(runtime, "test-admin-token")
    assert _last_used(runtime) == used  # within the minute: no write

    stale = accounts.utcnow() - accounts.LAST_USED_RESOLUTION * 2
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.tokens).values(last_used=stale))
    assert accounts.check_token(runtime, "test-admin-token").touch_due
    accounts.authenticate_token(runtime, "test-admin-token")
    assert _last_used(runtime) not in {used, stale}


def test_a_revoked_token_is_refused_on_its_next_use(runtime: Runtime) -> None:
    accounts.bootstrap_admin(runtime)
    accounts.authenticate_token(runtime, "test-admin-token")
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.tokens).values(revoked=accounts.utcnow()))
    with pytest.raises(Unauthenticated):
        accounts.check_token(runtime, "test-admin-token")
