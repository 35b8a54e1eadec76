"""`jobyard serve` as a newcomer runs it: a real process, configured by JOBYARD_* variables."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from jobyard.store import migrate

JOBYARD = [sys.executable, "-m", "jobyard"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    port = _free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    full_env = {**inherited, **env, "JOBYARD_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen([*JOBYARD, "serve"], env=full_env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
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
    with serving(env, tmp_path / "serve.log") as url:
        api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": "Bearer s3cret"})
        config = api.post("/configs/", json={"name": "default", "testvars": {"who": "world"}})
        package = api.post(
            "/packages/",
            json={
                "name": "hello",
                "command": ["echo", "hello {who}"],
                "config_id": config.json()["data"]["id"],
            },
        )
        job = api.post("/jobs/", json={"package_id": package.json()["data"]["id"]}).json()["data"]
        deadline = time.monotonic() + 20
        while api.get(f"/jobs/{job['id']}/").json()["data"]["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        log = api.get(f"/jobs/{job['id']}/log/", headers={"Accept": "text/plain"})
        refused = httpx.get(f"{url}/api/v1/jobs/", headers={"Authorization": "Bearer nope"})

    assert log.text == "hello world\n"
    assert refused.status_code == 401
    assert (tmp_path / "data" / "jobyard.db").exists()
    assert "listening on http://127.0.0.1:" in (tmp_path / "serve.log").read_text()
    assert "runs jobs: yes, 2 worker slots" in (tmp_path / "serve.log").read_text()


def test_serve_with_no_workers_says_it_runs_no_jobs_and_runs_none(tmp_path: Path) -> None:
    """`--workers 0` (here JOBYARD_WORKERS=0) is the API alone, as docs/deployment.md says."""
    env = {"JOBYARD_DATA_DIR": str(tmp_path / "data"), "JOBYARD_ADMIN_TOKEN": "s3cret"}
    env |= {"JOBYARD_WORKERS": "0"}  # and no JOBYARD_RUN_AS: it runs nothing, so none is needed
    with serving(env, tmp_path / "serve.log") as url:
        api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": "Bearer s3cret"})
        package = api.post("/packages/", json={"name": "p", "command": ["true"]}).json()["data"]
        job = api.post("/jobs/", json={"package_id": package["id"]}).json()["data"]
        time.sleep(1.5)
        assert api.get(f"/jobs/{job['id']}/").json()["data"]["status"] == "pending"
        assert api.get("/workers/").json()["data"] == []
    assert "runs jobs: no (API only)" in (tmp_path / "serve.log").read_text()


def test_first_start_prints_a_generated_token_once(tmp_path: Path, jobs_run_as: str) -> None:
    env = {"JOBYARD_DATA_DIR": str(tmp_path / "data"), "JOBYARD_RUN_AS": jobs_run_as}
    with serving(env, tmp_path / "first.log") as url:
        printed = re.findall(r"jy_[A-Za-z0-9_-]+", (tmp_path / "first.log").read_text())
        assert len(printed) == 1
        answer = httpx.get(f"{url}/api/v1/jobs/", headers={"Authorization": f"Bearer {printed[0]}"})
        assert answer.status_code == 200
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
