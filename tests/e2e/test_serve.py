"""`jobyard serve` as a newcomer runs it: a real process, configured by JOBYARD_* variables."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jobyard.client import AuthenticationFailed, Client
from jobyard.store import migrate
from tests.conftest import free_port, wait_until_healthy

JOBYARD = [sys.executable, "-m", "jobyard"]


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    full_env = {**inherited, **env, "JOBYARD_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen([*JOBYARD, "serve"], env=full_env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal it caught
        assert proc.wait(30) in {0, -signal.SIGTERM}, log.read_text()
        assert "Application shutdown complete" in log.read_text()


def test_serve_runs_a_job_with_the_configured_admin_token(tmp_path: Path, jobs_run_as: str) -> None:
    env = {
        "JOBYARD_DATA_DIR": str(tmp_path / "data"),
        "JOBYARD_ADMIN_TOKEN": "s3cret",
        "JOBYARD_RUN_AS": jobs_run_as,
    }
    with serving(env, tmp_path / "serve.log") as url, Client(url, "s3cret") as api:
        config = api.create_config({"name": "default", "testvars": {"who": "world"}})
        package = api.create_package(
            {"name": "hello", "command": ["echo", "hello {who}"], "config_id": config["id"]}
        )
        job = api.launch({"package_id": package["id"]})
        ends = [e for e in api.follow(job["id"]) if e.kind == "end"]
        log = api.job_log(job["id"])
        with Client(url, "nope") as stranger, pytest.raises(AuthenticationFailed) as refused:
            stranger.list_jobs([])

    assert [(e.data["status"], e.exit_code) for e in ends] == [("completed", 0)]
    assert log.text == "hello world\n"
    assert refused.value.status == 401
    assert (tmp_path / "data" / "jobyard.db").exists()
    assert "listening on http://127.0.0.1:" in (tmp_path / "serve.log").read_text()
    assert "runs jobs: yes, 2 worker slots" in (tmp_path / "serve.log").read_text()


def test_serve_with_no_workers_says_it_runs_no_jobs_and_runs_none(tmp_path: Path) -> None:
    """`--workers 0` (here JOBYARD_WORKERS=0) is the API alone, as docs/deployment.md says."""
    env = {"JOBYARD_DATA_DIR": str(tmp_path / "data"), "JOBYARD_ADMIN_TOKEN": "s3cret"}
    env |= {"JOBYARD_WORKERS": "0"}  # and no JOBYARD_RUN_AS: it runs nothing, so none is needed
    with serving(env, tmp_path / "serve.log") as url, Client(url, "s3cret") as api:
        package = api.create_package({"name": "p", "command": ["true"]})
        job = api.launch({"package_id": package["id"]})
        time.sleep(1.5)
        assert api.get_job(job["id"])["status"] == "pending"
        assert api.list_workers() == []
    assert "runs jobs: no (API only)" in (tmp_path / "serve.log").read_text()


def test_first_start_prints_a_generated_token_once(tmp_path: Path, jobs_run_as: str) -> None:
    env = {"JOBYARD_DATA_DIR": str(tmp_path / "data"), "JOBYARD_RUN_AS": jobs_run_as}
    with serving(env, tmp_path / "first.log") as url:
        printed = re.findall(r"jy_[A-Za-z0-9_-]+", (tmp_path / "first.log").read_text())
        assert len(printed) == 1
        with Client(url, printed[0]) as api:
            assert api.list_jobs([]).items == []
    with serving(env, tmp_path / "second.log"):
        assert not re.findall(r"jy_[A-Za-z0-9_-]+", (tmp_path / "second.log").read_text())


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["JOBYARD_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [*JOBYARD, "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"database at revision {migrate.head_revision()}" in result.stderr
