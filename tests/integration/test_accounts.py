"""The admin bootstrap, token hashing under the server's key, and password checks."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.errors import TooManyAttempts, Unauthenticated, ValidationFailed
from jobyard.services import (
    accounts,
    authentication,
    credentials,
    execution,
    tokens,
    worker_registry,
)
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings, load_settings
from jobyard.store import tables
from tests.api.helpers import launch, package
from tests.conftest import AUTH


def test_first_start_generates_a_token_once(runtime: Runtime) -> None:
    runtime.settings = Settings(**{**runtime.settings.__dict__, "admin_token": None})
    with runtime.db.transaction() as conn:  # the tests' databases hold the admin already
        conn.execute(sa.delete(tables.users))

    first = accounts.bootstrap_admin(runtime)
    second = accounts.bootstrap_admin(runtime)

    assert first.new_token is not None
    assert second.new_token is None
    identity = authentication.authenticate_token(runtime, first.new_token)
    assert (identity.login, identity.role) == ("admin", "admin")


def test_the_configured_token_works_and_is_stored_hashed(runtime: Runtime) -> None:
    result = accounts.bootstrap_admin(runtime)

    assert result.new_token is None
    assert (
        authentication.authenticate_token(runtime, "test-admin-token").user_id
        == result.admin_user_id
    )
    with runtime.db.read() as conn:
        stored = conn.execute(sa.select(tables.tokens.c.secret_hash)).scalars().all()
    assert "test-admin-token" not in stored
    assert tokens.hash_token(runtime, "test-admin-token") in stored


@pytest.mark.parametrize("token", ["", "wrong", "x" * 10_000])
def test_a_bad_token_is_refused(runtime: Runtime, token: str) -> None:
    accounts.bootstrap_admin(runtime)
    with pytest.raises(Unauthenticated, match="invalid token"):
        authentication.authenticate_token(runtime, token)


def _last_used(runtime: Runtime) -> object:
    with runtime.db.read() as conn:
        return conn.execute(sa.select(tables.tokens.c.last_used)).scalar_one()


def test_last_used_is_written_at_most_once_a_minute(runtime: Runtime) -> None:
    accounts.bootstrap_admin(runtime)
    first = authentication.check_token(runtime, "test-admin-token")
    assert first.touch_due  # never used yet
    authentication.authenticate_token(runtime, "test-admin-token")
    used = _last_used(runtime)
    assert used is not None

    assert not authentication.check_token(runtime, "test-admin-token").touch_due
    authentication.authenticate_token(runtime, "test-admin-token")
    assert _last_used(runtime) == used  # within the minute: no write

    stale = accounts.utcnow() - authentication.LAST_USED_RESOLUTION * 2
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.tokens).values(last_used=stale))
    assert authentication.check_token(runtime, "test-admin-token").touch_due
    authentication.authenticate_token(runtime, "test-admin-token")
    assert _last_used(runtime) not in {used, stale}


def test_a_revoked_token_is_refused_on_its_next_use(runtime: Runtime) -> None:
    accounts.bootstrap_admin(runtime)
    authentication.authenticate_token(runtime, "test-admin-token")
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.tokens).values(revoked=accounts.utcnow()))
    with pytest.raises(Unauthenticated):
        authentication.check_token(runtime, "test-admin-token")


# Token hashes: HMAC-SHA256 under the server's key -------------------------------------------


def _stored_hashes(runtime: Runtime) -> list[str]:
    with runtime.db.read() as conn:
        return list(conn.execute(sa.select(tables.tokens.c.secret_hash)).scalars())


def _issue(runtime: Runtime) -> tokens.IssuedToken:
    admin = authentication.console_principal(runtime)
    return accounts.create_token(
        runtime, actor=admin, name="ci", scopes=["jobs:read"], expires=None
    )


def test_token_hashes_are_keyed_and_a_token_fails_under_another_key(runtime: Runtime) -> None:
    accounts.bootstrap_admin(runtime)
    issued = _issue(runtime)
    key = (runtime.settings.data_dir / credentials.KEY_FILE).read_bytes()

    stored = _stored_hashes(runtime)
    for secret in ("test-admin-token", issued.secret):
        assert hashlib.sha256(secret.encode()).hexdigest() not in stored
        assert hmac.new(key, secret.encode(), hashlib.sha256).hexdigest() in stored

    other_key = Settings(**{**runtime.settings.__dict__, "secret_key": "another-key-" * 3})
    other = open_runtime(other_key)
    try:
        assert tokens.hash_token(other, issued.secret) != tokens.hash_token(runtime, issued.secret)
        for secret in ("test-admin-token", issued.secret):
            assert authentication.authenticate_token(runtime, secret).login == "admin"
            with pytest.raises(Unauthenticated):
                authentication.authenticate_token(other, secret)
    finally:
        other.db.dispose()


def test_a_token_hashed_by_an_earlier_release_works_and_is_rehashed(runtime: Runtime) -> None:
    """Rows stored as plain SHA-256 (before the key) are accepted, then stored keyed; the
    configured admin token is re-hashed at start."""
    accounts.bootstrap_admin(runtime)
    issued = _issue(runtime)
    legacy = hashlib.sha256(issued.secret.encode()).hexdigest()
    admin_legacy = hashlib.sha256(b"test-admin-token").hexdigest()
    rows = tables.tokens
    with runtime.db.transaction() as conn:
        conn.execute(
            sa.update(rows).where(rows.c.id == issued.record.id).values(secret_hash=legacy)
        )
        conn.execute(
            sa.update(rows).where(rows.c.id != issued.record.id).values(secret_hash=admin_legacy)
        )

    assert authentication.authenticate_token(runtime, issued.secret).token_id == issued.record.id
    stored = _stored_hashes(runtime)
    assert legacy not in stored
    assert tokens.hash_token(runtime, issued.secret) in stored
    assert authentication.authenticate_token(runtime, issued.secret).token_id == issued.record.id

    accounts.bootstrap_admin(runtime)  # a restart
    stored = _stored_hashes(runtime)
    assert admin_legacy not in stored
    assert len(stored) == 2  # rewritten, not added
    assert authentication.authenticate_token(runtime, "test-admin-token").login == "admin"


def test_the_configured_admin_token_is_live_after_every_start(runtime: Runtime) -> None:
    """JOBYARD_ADMIN_TOKEN is what the variable says: revoked (by a password change, say),
    it is live again at the next start."""
    accounts.bootstrap_admin(runtime)
    with runtime.db.transaction() as conn:
        conn.execute(sa.update(tables.tokens).values(revoked=accounts.utcnow()))
    with pytest.raises(Unauthenticated):
        authentication.authenticate_token(runtime, "test-admin-token")
    accounts.bootstrap_admin(runtime)
    assert authentication.authenticate_token(runtime, "test-admin-token").login == "admin"


def test_the_key_file_is_made_once_private_and_reused(runtime: Runtime) -> None:
    path = runtime.settings.data_dir / credentials.KEY_FILE
    assert not path.exists()
    accounts.bootstrap_admin(runtime)
    assert path.stat().st_mode & 0o777 == 0o600
    key = path.read_bytes()
    assert len(key) == credentials.KEY_BYTES

    restarted = open_runtime(runtime.settings)
    try:
        assert authentication.authenticate_token(restarted, "test-admin-token").login == "admin"
    finally:
        restarted.db.dispose()
    assert path.read_bytes() == key


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: credentials.load_key(settings), range(8)))
    assert len(keys) == 1
    assert [p.name for p in settings.data_dir.iterdir()] == [credentials.KEY_FILE]


def test_jobyard_secret_key_is_used_instead_of_a_file(tmp_path: Path) -> None:
    env = {"JOBYARD_DATA_DIR": str(tmp_path / "data"), "JOBYARD_SECRET_KEY": "k" * 32}
    settings = load_settings(env)
    assert credentials.load_key(settings) == b"k" * 32
    assert not settings.data_dir.exists()
    assert "k" * 32 not in repr(settings)
    short = load_settings(env | {"JOBYARD_SECRET_KEY": "too-short"})
    with pytest.raises(ValidationFailed, match="at least 16"):
        credentials.load_key(short)


# Password checks: bounded, and the same for logins that do not exist ------------------------


def test_no_more_password_hashes_run_at_once_than_the_limit() -> None:
    """Two slots: never a third hash at once; past the short queue, callers are told to
    come back (429) instead of piling up."""
    slots = credentials.HashSlots(2)
    running, most = 0, 0
    refused: list[int] = []
    lock = threading.Lock()

    def hash_once(_: int) -> None:
        nonlocal running, most
        try:
            with slots.slot():
                with lock:
                    running += 1
                    most = max(most, running)
                time.sleep(0.3)
                with lock:
                    running -= 1
        except TooManyAttempts as exc:
            refused.append(exc.retry_after)

    with ThreadPoolExecutor(40) as pool:
        list(pool.map(hash_once, range(40)))
    assert most == 2
    assert refused
    assert set(refused) == {1}


def test_tries_against_unknown_logins_are_counted_and_bounded() -> None:
    tries = credentials.UnknownLogins(limit=5, lock_seconds=60)
    assert [tries.reserve("ghost") for _ in range(5)] == [0.0] * 5
    assert 59 < tries.reserve("ghost") <= 60
    for number in range(credentials.UNKNOWN_LOGINS_KEPT):
        tries.reserve(f"other{number}")
    assert tries.reserve("ghost") == 0.0  # forgotten: the map keeps the most recent only


def test_a_password_checks_against_a_dummy_when_there_is_no_hash() -> None:
    passwords = credentials.Passwords(1)
    stored = passwords.hash("the-password")
    assert passwords.verify(stored, "the-password")
    assert passwords.remembers(stored, "the-password")
    assert not passwords.verify(stored, "not-the-password")
    assert not passwords.verify(None, "the-password")
    assert not passwords.remembers(None, "the-password")


def test_a_job_token_is_keyed_and_a_run_from_an_earlier_release_still_works(
    settings: Settings,
) -> None:
    """A run's token hash is keyed like any token; a run started by an earlier release (plain
    SHA-256) keeps working until it ends."""
    idle = Settings(**{**settings.__dict__, "workers": 0})
    with TestClient(create_app(idle), headers=AUTH) as client:
        job = launch(client, package_id=package(client, command=["true"])["id"])
    rt = open_runtime(idle)
    try:
        work = execution.claim_job(rt, worker=worker_registry.register_worker(rt, slots=1))
        assert work is not None
        runs = tables.runs
        with rt.db.read() as conn:
            stored = conn.execute(sa.select(runs.c.token_hash)).scalar_one()
        assert stored == tokens.hash_token(rt, work.token)
        assert stored != hashlib.sha256(work.token.encode()).hexdigest()
        assert authentication.authenticate_token(rt, work.token).job_id == int(job["id"])

        legacy = hashlib.sha256(work.token.encode()).hexdigest()
        with rt.db.transaction() as conn:
            conn.execute(sa.update(runs).values(token_hash=legacy))
        assert authentication.authenticate_token(rt, work.token).job_id == int(job["id"])
    finally:
        rt.db.dispose()
