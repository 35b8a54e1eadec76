"""`jobyard users|tokens|tenants` work straight on the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from jobyard.cli.main import app
from jobyard.errors import Unauthenticated
from jobyard.services import authentication
from jobyard.services.runtime import open_runtime
from jobyard.settings import Settings

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    for name in ("JOBYARD_DATABASE_URL", "JOBYARD_ADMIN_TOKEN", "JOBYARD_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOBYARD_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    return invoke


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_users_tokens_and_tenants_from_the_command_line(run: Run, tmp_path: Path) -> None:
    assert "customer 2 acme" in run("tenants", "create", "acme").stdout
    assert "acme" in run("tenants", "list").stdout
    created = run(
        "users",
        "create",
        "ops",
        "--role",
        "operator",
        "--password",
        "first-password",
        "--customer",
        "2",
    )
    assert "ops (operator) in customer 2" in created.stdout
    assert "ops" in run("users", "list", "--customer", "2").stdout
    run("users", "passwd", "ops", "--password", "second-password")

    issued = run("tokens", "create", "ops", "--name", "ci", "--scope", "jobs:read")
    secret = issued.stdout.strip()
    token_id = issued.stderr.split()[1]

    rt = open_runtime(_settings(tmp_path))
    who = authentication.authenticate_token(rt, secret)
    assert (who.login, who.tenant_id, sorted(who.scopes)) == ("ops", 2, ["jobs:read"])
    assert authentication.authenticate_password(rt, "ops", "second-password").login == "ops"
    with pytest.raises(Unauthenticated):
        authentication.authenticate_password(rt, "ops", "first-password")
    listed = run("tokens", "list", "--customer", "2").stdout
    assert "ci" in listed
    assert secret not in listed

    run("tokens", "revoke", token_id, "--customer", "2")
    with pytest.raises(Unauthenticated):
        authentication.authenticate_token(rt, secret)
    rt.db.dispose()


def test_an_unknown_user_is_a_clear_error(run: Run) -> None:
    result = CliRunner().invoke(app, ["users", "passwd", "nobody", "--password", "whatever-pw"])
    assert result.exit_code == 1
    assert "no such user 'nobody'" in result.output


def test_a_new_password_from_the_command_line_revokes_tokens_unless_kept(
    run: Run, tmp_path: Path
) -> None:
    run("users", "create", "ops", "--password", "first-password")
    secret = run("tokens", "create", "ops", "--name", "ci", "--scope", "jobs:read").stdout.strip()
    rt = open_runtime(_settings(tmp_path))
    try:
        kept = run("users", "passwd", "ops", "--password", "second-password", "--keep-tokens")
        assert "its API tokens kept" in kept.stdout
        assert authentication.authenticate_token(rt, secret).login == "ops"

        revoked = run("users", "passwd", "ops", "--password", "third-password")
        assert "its API tokens revoked" in revoked.stdout
        with pytest.raises(Unauthenticated):
            authentication.authenticate_token(rt, secret)
        assert authentication.authenticate_password(rt, "ops", "third-password").login == "ops"
    finally:
        rt.db.dispose()
