"""Issue 16, D1: a job owns nothing of the installation. Jobs run as a user of their own,
each in a directory of its own, and every route the probe took to the server's secrets,
its database and other jobs' files fails, while the server stays intact. With bubblewrap,
runs also cannot see each other, and a package can take the network away.

Real users (the session's own, made with useradd), real processes, a real server; on both
databases. Skips where the tests do not run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

API = "/api/v1"
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}
PASSWORD = "a long enough password"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory anyone may pass through (unlike pytest's own), so that only jobyard's
    modes stand between a job and what is in it."""
    path = Path(tempfile.mkdtemp(prefix="jobyard-t-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def isolated(
    settings: Settings, job_user: str, base: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Jobs as the session's user; the data directory made loose on purpose (the server
    tightens it) and holding the SQLite file; the admin token in the server's environment,
    where the probe found it."""
    data = base / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    url = settings.database_url
    if url.startswith("sqlite:///"):
        shutil.copy(url.removeprefix("sqlite:///"), data / "jobyard.db")
        (data / "jobyard.db").chmod(0o644)
        url = f"sqlite:///{data / 'jobyard.db'}"
    monkeypatch.setenv("JOBYARD_ADMIN_TOKEN", ADMIN_TOKEN)
    return Settings(
        **{
            **settings.__dict__,
            "data_dir": data,
            "database_url": url,
            "run_as": job_user,
            "runs_dir": base / "runs",
            # The probe's attacker: a customer's admin allowed to define what runs.
            "customer_admins_define_commands": True,
        }
    )


@pytest.fixture
def server(isolated: Settings) -> Iterator[LiveServer]:
    with LiveServer(isolated) as live:
        yield live


def _api(server: LiveServer, auth: tuple[str, str] | None = None) -> httpx.Client:
    """The admin, or a login with its password."""
    headers = AUTH if auth is None else {}
    return httpx.Client(base_url=f"{server.url}{API}", headers=headers, auth=auth, timeout=30)


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _run(api: httpx.Client, command: list[str], **package: Any) -> tuple[dict[str, Any], str]:
    """Define a package, launch it, wait for its end: the job and its output."""
    body = {"name": f"p{time.monotonic_ns()}", "command": command} | package
    package_id = _data(api.post("/packages/", json=body))["id"]
    job = _data(api.post("/jobs/", json={"package_id": package_id}))
    return _wait(api, job["id"])


def _wait(api: httpx.Client, job_id: str) -> tuple[dict[str, Any], str]:
    deadline = time.monotonic() + 60
    while (job := _data(api.get(f"/jobs/{job_id}/")))["status"] not in TERMINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    log = api.get(f"/jobs/{job_id}/log/", headers={"Accept": "text/plain"})
    return job, log.text


def _sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def test_a_job_runs_as_its_user_with_its_own_groups_in_a_private_directory(
    server: LiveServer, job_user: str
) -> None:
    script = (
        "grep -E '^(Uid|Gid|Groups|CapPrm|CapEff):' /proc/self/status; "
        "echo cwd=$(pwd); echo mode=$(stat -c '%a %U' .); echo home=$HOME tmp=$TMPDIR; "
        "echo user=$USER umask=$(umask); env | cut -d= -f1 | sort | tr '\\n' ' '"
    )
    with _api(server) as api:
        job, log = _run(api, _sh(script))
    assert job["status"] == "completed", log
    entry = pwd.getpwnam(job_user)
    lines = dict(line.split(":", 1) for line in log.splitlines() if ":" in line)
    assert lines["Uid"].split() == [str(entry.pw_uid)] * 4
    assert lines["Gid"].split() == [str(entry.pw_gid)] * 4
    assert lines["Groups"].split() == [str(g) for g in os.getgrouplist(job_user, entry.pw_gid)]
    assert int(lines["CapPrm"], 16) == int(lines["CapEff"], 16) == 0
    run_dir = log.split("cwd=")[1].split()[0]
    runs_root = str(server.settings.runs_dir)
    assert os.path.dirname(run_dir) == runs_root
    assert f"mode=700 {job_user}" in log
    assert f"home={run_dir} tmp={run_dir}" in log
    assert f"user={job_user} umask=0077" in log
    names = set(log.rsplit("\n", 1)[-1].split())
    assert names <= {
        "PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "HOME", "TMPDIR", "USER",
        "LOGNAME", "PWD", "SHLVL", "_", "JOBYARD_URL", "JOBYARD_JOB_ID", "JOBYARD_RUN_ID",
        "JOBYARD_ATTEMPT", "JOBYARD_TOKEN",
    }  # fmt: skip
    assert not os.path.exists(run_dir) or not os.listdir(run_dir), "a run's files outlived it"
    assert stat.S_IMODE(os.stat(runs_root).st_mode) == 0o711


def test_a_later_run_gets_its_directory_empty_and_private_again(server: LiveServer) -> None:
    """Run directories are emptied and handed to later runs of the same uid (a mkdir and
    rmdir per job cost a quarter of the throughput on ext4): what a run left or loosened
    never reaches the next."""
    loosen = "chmod 777 .; echo secret > left; mkdir -p sub/deeper; chmod 000 sub; pwd"
    look = "pwd; stat -c 'mode=%a' .; echo entries=$(ls -A | wc -l)"
    with _api(server) as api:
        first, log = _run(api, _sh(loosen))
        assert first["status"] == "completed", log
        places = set()
        for _ in range(3):
            job, seen = _run(api, _sh(look))
            assert job["status"] == "completed", seen
            assert "mode=700" in seen, seen
            assert "entries=0" in seen, seen
            places.add(seen.split()[0])
    assert log.split()[-1] in places, "no later run was given the first one's directory"


def _customer_two(api: httpx.Client) -> str:
    """Customer 2 with an admin and an operator: the tenant's id."""
    tenant = _data(api.post("/tenants/", json={"name": "acme"}))["id"]
    there = {"Customer-Id": tenant}
    for role in ("admin", "operator"):
        body = {"login": f"acme-{role}", "password": PASSWORD, "role": role}
        _data(api.post("/users/", json=body, headers=there))
    return tenant


# Braces are doubled: a package's command fills {placeholders}.
PROBE = r"""
data="$1"
echo "token-in-parent: $(tr '\0' '\n' < /proc/$PPID/environ 2>&1 | grep -c JOBYARD_ADMIN_TOKEN)"
found=0
for f in /proc/[0-9]*/environ; do
  if tr '\0' '\n' < "$f" 2>/dev/null | grep -q '^JOBYARD_ADMIN_TOKEN='; then found=$((found+1)); fi
done
echo "token-anywhere: $found"
ls "$data" >/dev/null 2>&1 && echo "data-dir: listed" || echo "data-dir: refused"
for f in jobyard.db jobyard.db-wal jobyard.db-shm; do
  head -c 16 "$data/$f" >/dev/null 2>&1 && echo "$f: read" || echo "$f: refused"
done
head -c 16 ../jobyard.db >/dev/null 2>&1 && echo "beside: read" || echo "beside: refused"
true >> "$data/jobyard.db" 2>/dev/null && echo "db-write: opened" || echo "db-write: refused"
ls .. >/dev/null 2>&1 && echo "runs: listed" || echo "runs: refused"
admin="Authorization: Bearer $JOBYARD_ADMIN_TOKEN"
url="$JOBYARD_URL/api/v1/tenants/"
echo "as admin: $(curl -s -o /dev/null -w '%{{http_code}}' -H "$admin" "$url")"
echo secret > left-behind; echo "left: $(pwd)/left-behind"
"""


def test_a_customer_two_job_cannot_reach_the_servers_secrets_database_or_data(
    server: LiveServer,
) -> None:
    data = str(server.settings.data_dir)
    package = {"name": "probe", "command": ["sh", "-c", PROBE, "probe", data]}
    with _api(server) as api:
        tenant = _customer_two(api)
        # As the probe did it: customer 2's admin (allowed to define commands) defines the
        # package and launches it.
        with _api(server, ("acme-admin", PASSWORD)) as as_admin:
            package_id = _data(as_admin.post("/packages/", json=package))["id"]
            job = _data(as_admin.post("/jobs/", json={"package_id": package_id}))
            job, log = _wait(as_admin, job["id"])
        assert job["status"] == "completed", log
        assert "token-in-parent: 0" in log
        assert "token-anywhere: 0" in log
        for refused in ("data-dir", "jobyard.db", "jobyard.db-wal", "jobyard.db-shm", "runs"):
            assert f"{refused}: refused" in log, log
        assert "beside: refused" in log
        assert "db-write: refused" in log
        assert "as admin: 401" in log
        left = log.split("left: ")[1].split()[0]
        assert not os.path.exists(left), "a run's file outlived the run"

        # The server is intact: the admin token works, and nobody else became admin.
        assert api.get("/tenants/").status_code == 200
        users = _data(api.get("/users/?limit=none", headers={"Customer-Id": tenant}))
        roles = {u["login"]: u["role"] for u in users}
        assert roles == {"acme-admin": "admin", "acme-operator": "operator"}
        system = _data(api.get("/users/?limit=none"))
        assert not {u["login"] for u in system} & {"acme-admin", "acme-operator"}
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in [server.settings.data_dir, *server.settings.data_dir.glob("jobyard.db*")]
    }
    assert modes.pop("data") == 0o700
    assert all(mode == 0o600 for name, mode in modes.items() if not name.endswith("lock")), modes


def test_a_run_cannot_list_others_nor_find_what_an_ended_one_left(server: LiveServer) -> None:
    with _api(server) as api:
        first, log = _run(api, _sh("echo secret > mine; pwd"))
        assert first["status"] == "completed", log
        left = f"{log.strip()}/mine"
        _second, peek = _run(api, _sh(f"cat {left}; ls ..; echo done"))
    assert "secret" not in peek
    assert "No such file" in peek, peek
    assert "Permission denied" in peek, peek


# --- bubblewrap ---------------------------------------------------------------------------


@pytest.fixture
def bwrap_server(isolated: Settings) -> Iterator[LiveServer]:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed (Debian: bubblewrap)")
    with LiveServer(Settings(**{**isolated.__dict__, "sandbox": "bwrap"})) as live:
        yield live


def test_bwrap_hides_other_runs_the_data_and_tmp_and_takes_the_network_away(
    bwrap_server: LiveServer, base: Path, job_user: str
) -> None:
    server = bwrap_server
    writable = base / "out"
    writable.mkdir()
    shutil.chown(writable, job_user)
    port = server.url.rsplit(":", 1)[1]
    connect = (
        f"curl -s -o /dev/null -w 'code=%{{{{http_code}}}}' http://127.0.0.1:{port}/healthz"
        " || echo ' no-connect'"
    )
    with _api(server) as api:
        sleeper = _data(
            api.post(
                "/jobs/",
                json={
                    "package_id": _data(
                        api.post(
                            "/packages/",
                            json={
                                "name": "sleeper",
                                "command": _sh("pwd; touch /tmp/mine; sleep 30"),
                            },
                        )
                    )["id"]
                },
            )
        )
        deadline = time.monotonic() + 30
        while not (
            sleeping := api.get(
                f"/jobs/{sleeper['id']}/log/", headers={"Accept": "text/plain"}
            ).text
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        other_dir = sleeping.split()[0]
        script = (
            f"ls -d {other_dir} 2>&1; echo tmp=$(ls /tmp/mine 2>/dev/null | wc -l); "
            f"echo data=$(ls {server.settings.data_dir} | wc -l); "
            f"echo sleeping=$(ps -e | grep -c sleep); echo hi > {writable}/x && echo wrote; "
            f"echo no > /usr/x 2>&1; {connect}"
        )
        offline, log = _run(
            api, _sh(script), sandbox={"network": False, "writable_paths": [str(writable)]}
        )
        _online, online_log = _run(api, _sh(connect))
        api.post(f"/jobs/{sleeper['id']}/cancel/")
    assert offline["status"] == "completed", log
    lines = log.splitlines()
    assert "No such file" in lines[0], log  # the running sibling's directory is not there
    assert lines[1:4] == ["tmp=0", "data=0", "sleeping=0"], log
    assert "wrote" in log
    assert (writable / "x").read_text() == "hi\n"
    assert "Read-only file system" in log
    assert "no-connect" in log
    assert "code=200" not in log
    assert "code=200" in online_log, online_log
    assert not os.path.exists("/tmp/mine")
