"""Settings come from JOBYARD_* variables, with flags on top; bad values are refused clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobyard.cli.main import app
from jobyard.errors import ValidationFailed
from jobyard.settings import load_settings
from jobyard.store.db import Timeouts


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 2)
    assert settings.data_dir == Path("./var")
    assert settings.admin_token is None
    assert (settings.secret_key, settings.max_concurrent_hashes) == (None, 2)
    assert settings.effective_database_url == f"sqlite:///{Path('./var/jobyard.db').resolve()}"


def test_environment_names() -> None:
    settings = load_settings(
        {
            "JOBYARD_HOST": "192.0.2.10",
            "JOBYARD_PORT": "9000",
            "JOBYARD_DATA_DIR": "/srv/jobyard",
            "JOBYARD_DATABASE_URL": "postgresql://u@db/jobs",
            "JOBYARD_WORKERS": "8",
            "JOBYARD_ADMIN_TOKEN": "secret",
            "JOBYARD_SECRET_KEY": " a-key-of-enough-length ",
            "JOBYARD_MAX_CONCURRENT_HASHES": "4",
        }
    )
    assert (settings.secret_key, settings.max_concurrent_hashes) == ("a-key-of-enough-length", 4)
    assert (settings.host, settings.port, settings.workers) == ("192.0.2.10", 9000, 8)
    assert settings.data_dir == Path("/srv/jobyard")
    assert settings.effective_database_url == "postgresql://u@db/jobs"
    assert settings.admin_token == "secret"
    assert settings.base_url == "http://192.0.2.10:9000"


def test_flags_win_over_the_environment_and_unset_flags_do_not() -> None:
    settings = load_settings({"JOBYARD_PORT": "9000"}).with_overrides(port=9100, workers=None)
    assert settings.port == 9100
    assert settings.workers == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBYARD_PORT", "http", "JOBYARD_PORT must be an integer"),
        ("JOBYARD_WORKERS", "-1", "JOBYARD_WORKERS must be 0 or more"),
        ("JOBYARD_CANCEL_GRACE_SECONDS", "soon", "must be a number"),
        ("JOBYARD_MAX_CONCURRENT_HASHES", "0", "JOBYARD_MAX_CONCURRENT_HASHES must be at least 1"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        load_settings({name: value})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", False),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("0", False),
    ],
)
def test_customer_admins_define_commands_is_a_strict_boolean(raw: str, expected: bool) -> None:
    assert load_settings({}).customer_admins_define_commands is False
    env = {"JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS": raw}
    assert load_settings(env).customer_admins_define_commands is expected


@pytest.mark.parametrize("raw", ["2", "truee", "false!", "enabled"])
def test_customer_admins_define_commands_refuses_anything_else(raw: str) -> None:
    env = {"JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS": raw}
    with pytest.raises(ValidationFailed, match="JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS must be"):
        load_settings(env)


def test_the_query_time_limit() -> None:
    assert load_settings({}).query_timeout_seconds == 2.0
    chosen = load_settings({"JOBYARD_QUERY_TIMEOUT_SECONDS": "0.5"})
    assert chosen.query_timeout_seconds == 0.5
    with pytest.raises(ValidationFailed, match="JOBYARD_QUERY_TIMEOUT_SECONDS must be a number"):
        load_settings({"JOBYARD_QUERY_TIMEOUT_SECONDS": "long"})


def test_database_limits_default_and_may_be_turned_off() -> None:
    defaults = load_settings({})
    assert (
        defaults.db_connect_timeout_seconds,
        defaults.db_lock_timeout_seconds,
        defaults.db_statement_timeout_seconds,
        defaults.db_idle_in_transaction_seconds,
        defaults.db_wait_seconds,
    ) == (5.0, 5.0, 30.0, 10.0, 60.0)
    off = load_settings({"JOBYARD_DB_LOCK_TIMEOUT_SECONDS": "0", "JOBYARD_DB_WAIT_SECONDS": "0"})
    assert (off.db_lock_timeout_seconds, off.db_wait_seconds) == (0.0, 0.0)
    with pytest.raises(ValidationFailed, match="JOBYARD_DB_STATEMENT_TIMEOUT_SECONDS must be 0"):
        load_settings({"JOBYARD_DB_STATEMENT_TIMEOUT_SECONDS": "-1"})


def test_database_limits_become_libpq_parameters() -> None:
    args = Timeouts(connect=2.5, lock=0.25, statement=30, idle_in_transaction=0).connect_args()
    assert args["connect_timeout"] == 3
    assert args["keepalives"] == 1
    assert args["options"] == (
        "-c lock_timeout=250 -c statement_timeout=30000 -c idle_in_transaction_session_timeout=0"
    )
    heartbeat = Timeouts().at_most(lock=15 / 4, statement=15 / 2)
    assert (heartbeat.lock, heartbeat.statement) == (3.75, 7.5)
    assert Timeouts(lock=0).at_most(lock=1, statement=60).lock == 1  # none: the limit given


# --- the config file (jobyard.toml, or JOBYARD_CONFIG's) ------------------------------------


def test_a_config_file_under_the_environment_under_flags(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('port = 9000\nworkers = 8\nlog_format = "json"\nsandbox = "BWRAP"\n')
    env = {"JOBYARD_CONFIG": str(config), "JOBYARD_WORKERS": "4"}
    settings = load_settings(env).with_overrides(port=9100)
    assert (settings.port, settings.workers, settings.log_format) == (9100, 4, "json")
    assert settings.sandbox == "bwrap"


def test_jobyard_toml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).port == 8080
    (tmp_path / "jobyard.toml").write_text("port = 9001\n")
    assert load_settings({}).port == 9001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port = "http"\n', r"port in .*server.toml must be an integer, not 'http'"),
        ("prot = 9000\n", r"prot in .*server.toml is not a setting jobyard knows$"),
        ("workers = -2\n", r"workers in .*server.toml must be 0 or more"),
        ('log_format = "xml"\n', r"log_format in .*must be one of 'text' or 'json'"),
        ("port = [\n", r"server.toml: "),
    ],
)
def test_a_wrong_config_file_is_named_with_its_setting(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(text)
    with pytest.raises(ValidationFailed, match=message):
        load_settings({"JOBYARD_CONFIG": str(config)})


def test_a_missing_named_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=r"JOBYARD_CONFIG=.*: no such file"):
        load_settings({"JOBYARD_CONFIG": str(tmp_path / "absent.toml")})


def test_a_wrong_flag_is_named_as_a_flag() -> None:
    with pytest.raises(ValidationFailed, match="--log-format must be one of"):
        load_settings({}).with_overrides(log_format="yaml")


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text('admin_token = "t0ken-value"\nmetrics_token = "m3trics"\n')
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("JOBYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JOBYARD_DATABASE_URL", "postgresql://ops:pa55word@db:5432/jobs")
    monkeypatch.setenv("JOBYARD_SECRET_KEY", "a-key-of-enough-length")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["admin_token"] == shown["metrics_token"] == shown["secret_key"] == "***"
    assert shown["database_url"] == "postgresql://ops:***@db:5432/jobs"
    assert shown["port"] == 8080
    for secret in ("t0ken-value", "m3trics", "pa55word", "a-key-of-enough-length"):
        assert secret not in result.output
    plain = CliRunner().invoke(app, ["config", "show"])
    assert 'log_format = "text"' in plain.stdout
