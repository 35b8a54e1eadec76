"""Settings come from JOBYARD_* variables, with flags on top; bad values are refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        ("JOBYARD_WORKERS", "-1", "JOBYARD_WORKERS must be at least 0"),
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


@pytest.mark.parametrize("raw", ["on", "y", "2", "truee", "false!"])
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
