"""Proof by fault: standalone `jobyard worker` processes sharing one database are killed,
drained and raced, and no job is lost, stuck or run twice (on SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobyard.api.app import create_app
from jobyard.settings import Settings
from jobyard.store import tables
from jobyard.store.db import Database
from tests.chaos.proxy import Proxy
from tests.conftest import AUTH, free_port

# Kills jobyard processes, whose next start stops what their runs left on this host: alone.
pytestmark = pytest.mark.alone

LEASE_SECONDS = 2.0
# Every server and worker of a fleet hashes tokens with the same key.
FLEET_KEY = "the-fleet-s-shared-token-key"
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    return Settings(
        **{
            **settings.__dict__,
            "workers": 0,
            "lease_seconds": LEASE_SECONDS,
            "drain_seconds": 1.0,
            "secret_key": FLEET_KEY,
        }
    )


@pytest.fixture
def api(fleet_settings: Settings) -> Iterator[TestClient]:
    """The API alone: every job here is run by separate worker processes."""
    with TestClient(create_app(fleet_settings), headers=AUTH) as client:
        yield client


class Workers:
    """Starts `jobyard worker` processes against the test database and cleans them up."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, slots: int = 2, drain: float = 1.0, **extra_env: str
    ) -> subprocess.Popen[bytes]:
        """A worker; `extra_env` adds to (or replaces) its JOBYARD_* variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        env |= {
            "JOBYARD_DATABASE_URL": self.settings.database_url,
            "JOBYARD_DATA_DIR": str(self.tmp_path / f"worker{len(self.procs)}"),
            "JOBYARD_LEASE_SECONDS": str(LEASE_SECONDS),
            "JOBYARD_CANCEL_GRACE_SECONDS": "1",
            "JOBYARD_RUN_AS": self.settings.run_as,
            "JOBYARD_RUNS_DIR": str(self.settings.effective_runs_dir),
            "JOBYARD_SECRET_KEY": FLEET_KEY,
        }
        env |= extra_env
        log = (self.tmp_path / f"worker{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobyard",
                "worker",
                "--slots",
                str(slots),
                "--drain-seconds",
                str(drain),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def workers(fleet_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    fleet = Workers(fleet_settings, tmp_path)
    yield fleet
    fleet.stop_all()


def _package(api: TestClient, command: list[str], **fields: Any) -> str:
    body = {"name": f"p{time.monotonic_ns()}", "command": command} | fields
    response = api.post("/api/v1/packages/", json=body)
    assert response.status_code == 200, response.text
    package_id: str = response.json()["data"]["id"]
    return package_id


def _launch(api: TestClient, package_id: str, count: int) -> list[str]:
    response = api.post(
        "/api/v1/jobs/?bulk=launch", json={"jobs": [{"package_id": package_id}] * count}
    )
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]]


def _statuses(api: TestClient) -> dict[str, str]:
    jobs = api.get("/api/v1/jobs/?limit=none").json()["data"]
    return {job["id"]: job["status"] for job in jobs}


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _runs(db_url: str) -> list[Any]:
    db = Database(db_url)
    with db.read() as conn:
        rows = list(conn.execute(sa.select(tables.runs)))
    db.dispose()
    return rows


def _kill_groups(pids: list[int]) -> None:
    for pid in pids:
        assert pid > 0  # killpg(0) would be our own group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _live_members(pgid: int) -> list[int]:
    """Processes of a group that are still running (zombies, which this machine's init may
    never reap, do not count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            alive.append(int(entry.name))
    return alive


def test_killed_worker_jobs_are_retried_or_lost_within_the_lease(
    api: TestClient, workers: Workers, fleet_settings: Settings
) -> None:
    once = _package(api, ["sleep", "30"])
    twice = _package(api, ["sh", "-c", 'test "$JOBYARD_ATTEMPT" = 2 || sleep 30'], max_attempts=2)
    lost_ids = _launch(api, once, 2)
    retried_ids = _launch(api, twice, 2)
    victim = workers.start(slots=4)
    _wait(lambda: all(s == "running" for s in _statuses(api).values()), 30, "four running jobs")
    _wait(lambda: all(r.process_id for r in _runs(fleet_settings.database_url)), 10, "their pids")
    pids = [r.process_id for r in _runs(fleet_settings.database_url)]

    victim.kill()  # SIGKILL: no drain, no goodbye
    victim.wait(10)
    _kill_groups(pids)  # its children outlive it; they must not matter
    killed_at = time.monotonic()
    workers.start(slots=2)  # a survivor, whose reaper notices the lapsed leases
    _wait(lambda: all(s in TERMINAL for s in _statuses(api).values()), 30, "every job to end")

    statuses = _statuses(api)
    assert {statuses[i] for i in lost_ids} == {"lost"}
    assert {statuses[i] for i in retried_ids} == {"completed"}
    assert time.monotonic() - killed_at < 4 * LEASE_SECONDS + 10
    runs = _runs(fleet_settings.database_url)
    assert sorted(r.status for r in runs if r.attempt == 1) == ["lost"] * 4


@pytest.mark.timeout(600)
def test_workers_claim_many_jobs_each_exactly_once(
    api: TestClient, workers: Workers, fleet_settings: Settings
) -> None:
    count = int(os.environ.get("JOBYARD_TEST_FLEET_JOBS", "2000"))
    package_id = _package(api, ["true"])
    _launch(api, package_id, count)
    for _ in range(4):
        workers.start(slots=2)

    def all_done() -> bool:
        page = api.get("/api/v1/jobs/?filter=status=completed&limit=1").json()
        return bool(page["links"]["total"] == count)

    _wait(all_done, 540, f"{count} jobs to complete")
    runs = _runs(fleet_settings.database_url)
    assert len(runs) == count
    assert len({r.job_id for r in runs}) == count
    assert {r.attempt for r in runs} == {1}
    assert len({r.worker_id for r in runs}) == 4  # every worker took part


def test_a_cancel_reaches_the_worker_on_another_process(
    api: TestClient, workers: Workers, fleet_settings: Settings
) -> None:
    package_id = _package(api, ["sh", "-c", "sleep 60 & trap '' TERM; sleep 60"])
    [job_id] = _launch(api, package_id, 1)
    workers.start(slots=1)
    _wait(lambda: _statuses(api)[job_id] == "running", 20, "the job to run")
    _wait(lambda: _runs(fleet_settings.database_url)[0].process_id > 0, 10, "its pid")
    pgid = _runs(fleet_settings.database_url)[0].process_id

    assert api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 200
    _wait(lambda: _statuses(api)[job_id] == "cancelled", 20, "the cancel")

    assert _live_members(pgid) == []  # the whole process group is gone


def test_a_draining_worker_finishes_or_hands_back(
    api: TestClient, workers: Workers, fleet_settings: Settings
) -> None:
    quick = _launch(api, _package(api, ["sleep", "0.5"]), 1)[0]
    slow = _launch(api, _package(api, ["sleep", "30"]), 1)[0]
    worker = workers.start(slots=2, drain=2.0)
    _wait(lambda: set(_statuses(api).values()) == {"running"}, 20, "both jobs to run")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0

    statuses = _statuses(api)
    assert statuses[quick] == "completed"  # finished within the drain deadline
    assert statuses[slow] == "pending"  # handed back for another worker
    events = api.get(f"/api/v1/jobs/{slow}/events/").json()["data"]
    assert events[-1]["reason"] == "handed back by a worker shutting down"
    listed = api.get("/api/v1/workers/?all=true").json()["data"]
    assert listed[0]["stopped"] is not None


def test_workers_are_listed_with_their_runs(api: TestClient, workers: Workers) -> None:
    [job_id] = _launch(api, _package(api, ["sleep", "30"]), 1)
    workers.start(slots=3)
    _wait(lambda: _statuses(api)[job_id] == "running", 20, "the job to run")
    _wait(
        lambda: bool(api.get("/api/v1/workers/").json()["data"][0]["running_job_ids"]),
        10,
        "the listing",
    )

    [listed] = api.get("/api/v1/workers/").json()["data"]

    assert listed["slots"] == 3
    assert listed["running_job_ids"] == [job_id]
    assert listed["heartbeat"]
    api.post(f"/api/v1/jobs/{job_id}/cancel/")


def test_an_api_restart_loses_no_accepted_launch(
    fleet_settings: Settings, workers: Workers
) -> None:
    with TestClient(create_app(fleet_settings), headers=AUTH) as first:
        ids = _launch(first, _package(first, ["true"]), 20)
    workers.start(slots=2)
    with TestClient(create_app(fleet_settings), headers=AUTH) as second:
        _wait(lambda: all(_statuses(second)[i] == "completed" for i in ids), 30, "the jobs to run")


FLEET_PROBE = r"""
echo "uid: $(id -u)"
echo "db-url-in-parent: $(tr '\0' '\n' < /proc/$PPID/environ 2>/dev/null | grep -c DATABASE_URL)"
found=0
for f in /proc/[0-9]*/environ; do
  if tr '\0' '\n' < "$f" 2>/dev/null | grep -q '^JOBYARD_DATABASE_URL='; then found=$((found+1)); fi
done
echo "db-url-anywhere: $found"
ls "$1" >/dev/null 2>&1 && echo "data-dir: listed" || echo "data-dir: refused"
ls .. >/dev/null 2>&1 && echo "runs: listed" || echo "runs: refused"
"""


@pytest.mark.postgres
def test_a_standalone_workers_jobs_run_as_their_user_and_see_none_of_its_secrets(
    api: TestClient, workers: Workers, fleet_settings: Settings, job_user: str, tmp_path: Path
) -> None:
    """Issue 16, D1 through `jobyard worker`: the worker's environment holds the database
    URL; its jobs, as their own user, find it nowhere, nor its data directory."""
    if not fleet_settings.database_url.startswith("postgresql"):
        pytest.skip("the fleet's own database here is PostgreSQL (SQLite: test_isolation.py)")
    base = Path(tempfile.mkdtemp(prefix="jobyard-t-fleet-"))
    base.chmod(0o755)  # so that only jobyard's own modes keep a job out
    try:
        data = base / "data"
        package = _package(api, ["sh", "-c", FLEET_PROBE, "probe", str(data)])
        (job_id,) = _launch(api, package, 1)
        workers.start(
            JOBYARD_RUN_AS=job_user, JOBYARD_DATA_DIR=str(data), JOBYARD_RUNS_DIR=str(base / "runs")
        )
        _wait(lambda: _statuses(api)[job_id] in TERMINAL, 30, "the probe to end")
        log = api.get(f"/api/v1/jobs/{job_id}/log/", headers={"Accept": "text/plain"}).text
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert _statuses(api)[job_id] == "completed", log
    assert f"uid: {pwd.getpwnam(job_user).pw_uid}" in log
    for line in ("db-url-in-parent: 0", "db-url-anywhere: 0", "data-dir: refused", "runs: refused"):
        assert line in log, log


def test_a_job_run_by_another_process_uses_its_token_at_the_api(
    api: TestClient, workers: Workers, tmp_path: Path
) -> None:
    """The worker hashes the job's token, the API checks it: with the fleet's shared key
    (JOBYARD_SECRET_KEY) the token works."""
    seen, flag = tmp_path / "token", tmp_path / "flag"
    code = (
        "import os, pathlib, sys, time\n"
        "pathlib.Path(sys.argv[1]).write_text(os.environ['JOBYARD_TOKEN'])\n"
        "deadline = time.time() + 30\n"
        "while not pathlib.Path(sys.argv[2]).exists() and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    package_id = _package(api, [sys.executable, "-c", code, str(seen), str(flag)])
    [job_id] = _launch(api, package_id, 1)
    workers.start(slots=1)
    _wait(lambda: seen.exists() and bool(seen.read_text()), 30, "the job's token")
    as_job = {"Authorization": f"Bearer {seen.read_text()}"}
    response = api.get(f"/api/v1/jobs/{job_id}/", headers=as_job)
    assert response.status_code == 200, response.text
    flag.touch()
    _wait(lambda: _statuses(api)[job_id] == "completed", 30, "the job to end")


def _listed(api: TestClient, *, everything: bool = False) -> dict[int, dict[str, Any]]:
    """Workers as the API lists them, by pid."""
    query = "?all=true" if everything else ""
    return {w["pid"]: w for w in api.get(f"/api/v1/workers/{query}").json()["data"]}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_frozen_worker_leaves_the_list_and_comes_back_when_it_resumes(
    api: TestClient, workers: Workers
) -> None:
    """Issue 17: one silent for a lease is not listed and is marked stopped by another
    worker's reaper; it marks itself running again when it resumes. PostgreSQL only: on
    SQLite a worker frozen inside a write holds the file's lock, and every writer waits.

    Frozen inside its heartbeat's transaction, the victim holds its own row, which the
    reaper passes over until PostgreSQL ends that idle transaction (docs/fleet.md): its
    limit here is a lease, so that this case too is marked within the wait."""
    victim = workers.start(slots=1, JOBYARD_DB_IDLE_IN_TRANSACTION_SECONDS=str(LEASE_SECONDS))
    survivor = workers.start(slots=1)
    _wait(lambda: {victim.pid, survivor.pid} <= set(_listed(api)), 20, "both workers listed")

    victim.send_signal(signal.SIGSTOP)
    try:
        _wait(lambda: victim.pid not in _listed(api), 3 * LEASE_SECONDS, "the frozen one to go")
        _wait(_marked_stopped(api, victim.pid), 4 * LEASE_SECONDS, "the reaper to mark it")
        assert survivor.pid in _listed(api)
    finally:
        victim.send_signal(signal.SIGCONT)
    _wait(lambda: victim.pid in _listed(api), 3 * LEASE_SECONDS, "the resumed one to be back")
    assert _listed(api)[victim.pid]["stopped"] is None


def test_a_dead_worker_leaves_the_list_and_is_marked_stopped(
    api: TestClient, workers: Workers
) -> None:
    """Issue 17: workers that died stayed listed as live."""
    victim = workers.start(slots=1)
    survivor = workers.start(slots=1)
    _wait(lambda: {victim.pid, survivor.pid} <= set(_listed(api)), 20, "both workers listed")

    victim.kill()
    victim.wait(10)
    _wait(lambda: set(_listed(api)) == {survivor.pid}, 3 * LEASE_SECONDS, "the dead one to go")
    _wait(_marked_stopped(api, victim.pid), 4 * LEASE_SECONDS, "the reaper to mark it")


def _marked_stopped(api: TestClient, pid: int) -> Callable[[], bool]:
    return lambda: _listed(api, everything=True)[pid]["stopped"] is not None


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_worker_started_before_its_database_waits_for_it(
    api: TestClient, workers: Workers, fleet_settings: Settings, tmp_path: Path
) -> None:
    proxy = Proxy.for_url(fleet_settings.database_url)
    try:
        with proxy.down():
            late = workers.start(JOBYARD_DATABASE_URL=proxy.url(fleet_settings.database_url))
            time.sleep(2.0)
            assert late.poll() is None, "it gave up at once"
            assert late.pid not in _listed(api)
        [job_id] = _launch(api, _package(api, ["true"]), 1)
        _wait(lambda: _statuses(api)[job_id] == "completed", 30, "the late worker to run it")
        assert late.pid in _listed(api)
    finally:
        proxy.close()
    log = (tmp_path / "worker0.log").read_text()
    assert log.count("the database cannot be reached") == 1, log  # said once, not per try


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("command", ["worker", "serve"])
def test_with_no_wait_allowed_a_start_without_its_database_fails_at_once(
    fleet_settings: Settings, tmp_path: Path, command: str
) -> None:
    proxy = Proxy.for_url(fleet_settings.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env |= {
        "JOBYARD_DATABASE_URL": proxy.url(fleet_settings.database_url),
        "JOBYARD_DATA_DIR": str(tmp_path / "data"),
        "JOBYARD_DB_WAIT_SECONDS": "0",
        "JOBYARD_WORKERS": "0",
        "JOBYARD_SECRET_KEY": FLEET_KEY,
    }
    started = time.monotonic()
    try:
        with proxy.down():
            done = subprocess.run(
                [sys.executable, "-m", "jobyard", command],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
    finally:
        proxy.close()
    assert done.returncode == 2, done.stderr
    assert "the database cannot be reached" in done.stderr
    assert time.monotonic() - started < 10


def test_a_worker_serves_its_own_metrics(
    api: TestClient, workers: Workers, fleet_settings: Settings
) -> None:
    """`jobyard worker --metrics-port`: the runs it ended, counted in its own registry."""
    port = free_port()
    package_id = _package(api, ["true"])
    _launch(api, package_id, 3)
    workers.start(slots=2, JOBYARD_METRICS_PORT=str(port))

    def scraped() -> dict[str, float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        except httpx.TransportError:
            return {}
        return {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name in {"jobyard_runs_ended_total", "jobyard_launch_to_start_seconds_count"}
        }

    _wait(lambda: scraped().get("jobyard_runs_ended_total") == 3, 30, "three runs counted")
    assert scraped()["jobyard_launch_to_start_seconds_count"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_stopped_while_it_starts_ends_on_its_own_terms(
    workers: Workers, tmp_path: Path
) -> None:
    """A SIGTERM while the worker still waits for its database (an orchestrator stopping a
    fleet that is coming up) is heard: the worker is not killed by it, and ends once the
    wait is over, having claimed nothing."""
    closed = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    proc = workers.start(JOBYARD_DATABASE_URL=closed, JOBYARD_DB_WAIT_SECONDS="4")
    log = tmp_path / "worker0.log"
    deadline = time.monotonic() + 30
    while "waiting" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, "the worker never said it waits for its database"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)

    assert proc.wait(30) == 2, log.read_text(errors="replace")  # the database never came
