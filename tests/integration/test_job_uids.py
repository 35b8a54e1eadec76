"""Issue 16, D1, without a sandbox: with JOBYARD_JOB_UIDS each running job has a uid of its
own, so a job cannot read another's environment (its JOBYARD_TOKEN), enter its directory or
signal it, and nothing a job leaves running outlives it.

Real users and uids, real processes, a real server; on both databases. Skips where the tests
do not run as root.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.settings import Settings
from tests.conftest import LiveServer
from tests.integration.test_isolation import _api, _data, _run, _sh, _wait

# Kills jobyard processes, whose next start stops what their runs left on this host: alone.
pytestmark = [pytest.mark.timeout(120), pytest.mark.alone]


@pytest.fixture
def uids_server(
    settings: Settings, job_user: str, job_uid_range: tuple[int, int], tmp_path: Path
) -> Iterator[LiveServer]:
    """Jobs as the session's user, each with a uid of the test range; two slots."""
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(0o755)  # pytest's own temp directories are root's alone
    first, last = job_uid_range
    configured = {
        **settings.__dict__,
        "run_as": job_user,
        "job_uids": f"{first}-{last}",
        "runs_dir": base / "runs",
        "workers": 2,
    }
    with LiveServer(Settings(**configured)) as live:
        yield live


def _launch(api: httpx.Client, command: list[str]) -> str:
    body = {"name": f"p{time.monotonic_ns()}", "command": command}
    package_id = _data(api.post("/packages/", json=body))["id"]
    job_id: str = _data(api.post("/jobs/", json={"package_id": package_id}))["id"]
    return job_id


def _log_when(api: httpx.Client, job_id: str, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + 30
    while True:
        log = api.get(f"/jobs/{job_id}/log/", headers={"Accept": "text/plain"}).text
        if found := re.search(pattern, log):
            return found
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def _processes_of(uid: int) -> list[str]:
    """What runs as `uid` (zombies aside: they are dead, waiting to be reaped)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(f"{status.parent.name} {fields['Name'].strip()}")
    return found


PEEK = """
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) user=$USER"
cat /proc/{pid}/environ >/dev/null 2>&1 && echo "environ: read" || echo "environ: refused"
ls /proc/{pid}/cwd/ >/dev/null 2>&1 && echo "cwd: listed" || echo "cwd: refused"
ls {dir} >/dev/null 2>&1 && echo "dir: listed" || echo "dir: refused"
cat {dir}/secret >/dev/null 2>&1 && echo "secret: read" || echo "secret: refused"
kill -0 {pid} 2>&1 && echo "signal: sent"
echo done
"""


def test_two_running_jobs_have_uids_of_their_own_and_cannot_reach_each_other(
    uids_server: LiveServer, job_user: str, job_uid_range: tuple[int, int]
) -> None:
    sleeper = _sh("echo secret > secret; echo pid=$$ dir=$(pwd) uid=$(id -u); exec sleep 60")
    with _api(uids_server) as api:
        first = _launch(api, sleeper)
        seen = _log_when(api, first, r"pid=(\d+) dir=(\S+) uid=(\d+)")
        pid, run_dir, uid = seen.group(1), seen.group(2), int(seen.group(3))
        owner = os.stat(run_dir)
        second, log = _run(api, _sh(PEEK.format(pid=pid, dir=run_dir)))
        api.post(f"/jobs/{first}/cancel/")
        _wait(api, first)
    entry = pwd.getpwnam(job_user)
    assert second["status"] == "completed", log
    other = int(log.split("uid=")[1].split()[0])
    assert other != uid
    assert all(job_uid_range[0] <= u <= job_uid_range[1] for u in (uid, other))
    assert f"gid={entry.pw_gid} groups={entry.pw_gid} user={job_user}" in log
    assert (owner.st_uid, owner.st_gid, stat.S_IMODE(owner.st_mode)) == (uid, entry.pw_gid, 0o700)
    for refused in ("environ", "cwd", "dir", "secret"):
        assert f"{refused}: refused" in log, log
    assert "Operation not permitted" in log, log
    assert "signal: sent" not in log


DAEMON = "(setsid sleep 300 </dev/null >/dev/null 2>&1 &); sleep 0.2; echo uid=$(id -u)"


def test_nothing_a_job_leaves_running_outlives_it_and_only_its_uid_is_swept(
    uids_server: LiveServer, job_user: str
) -> None:
    bystanders = [
        subprocess.Popen(["sleep", "60"], user=user) for user in (job_user, "root")
    ]  # the jobs' user by name, and root: neither is the job's uid
    try:
        with _api(uids_server) as api:
            job, log = _run(api, _sh(DAEMON))
        assert job["status"] == "completed", log
        uid = int(log.split("uid=")[1].split()[0])
        deadline = time.monotonic() + 5
        while (left := _processes_of(uid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == [], f"still running as {uid}: {left}"
        assert all(p.poll() is None for p in bystanders)
    finally:
        for process in bystanders:
            process.kill()
            process.wait()
