"""Who jobs run as and in what (issue 16, D1): the start-up decision from JOBYARD_RUN_AS and
JOBYARD_SANDBOX, the sandbox's argv, and what every jobyard process does to itself."""

from __future__ import annotations

import itertools
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jobyard.errors import ValidationFailed
from jobyard.settings import load_settings
from jobyard.worker import confinement
from jobyard.worker.confinement import Confinement, ConfinementError, resolve_job_user

ROOT = 0
SOMEONE = 4242  # a server started by an unprivileged user


def test_server_is_the_explicit_opt_in_for_the_servers_own_user() -> None:
    assert resolve_job_user("server", server_uid=SOMEONE) is None
    assert resolve_job_user("server", server_uid=ROOT) is None


def test_an_unprivileged_server_without_run_as_refuses_and_says_what_to_do() -> None:
    with pytest.raises(ConfinementError) as raised:
        resolve_job_user("", server_uid=SOMEONE)
    assert "start jobyard as root" in raised.value.message
    assert "JOBYARD_RUN_AS=server" in raised.value.message


def test_root_without_run_as_creates_jobyard_job_and_says_so_when_it_cannot() -> None:
    if confinement.find_user(confinement.JOB_USER) is not None:
        pytest.skip("jobyard-job exists on this host: nothing would be created")
    asked: list[str] = []
    with pytest.raises(ConfinementError, match="jobyard-job is still missing"):
        resolve_job_user("", server_uid=ROOT, create=asked.append)
    assert asked == ["jobyard-job"]


def test_creating_a_user_that_cannot_be_made_names_it_and_the_command() -> None:
    with pytest.raises(ConfinementError) as raised:
        confinement.create_job_user("not a valid login!")
    assert "not a valid login!" in raised.value.message
    assert "useradd --system" in raised.value.message


@pytest.mark.parametrize("run_as", ["root", "0"])
def test_root_is_refused_unless_through_server(run_as: str) -> None:
    with pytest.raises(ConfinementError, match="JOBYARD_RUN_AS=server"):
        resolve_job_user(run_as, server_uid=ROOT)


def test_the_servers_own_user_is_refused_unless_through_server() -> None:
    me = pwd.getpwuid(os.getuid())
    if me.pw_uid == 0:
        pytest.skip("the tests' user is root, covered above")
    with pytest.raises(ConfinementError, match="JOBYARD_RUN_AS=server"):
        resolve_job_user(me.pw_name, server_uid=me.pw_uid)


def test_a_missing_user_is_named() -> None:
    with pytest.raises(ConfinementError, match="no-such-jobyard-user"):
        resolve_job_user("no-such-jobyard-user", server_uid=ROOT)


def test_another_user_needs_root(job_user: str) -> None:
    with pytest.raises(ConfinementError, match="needs root"):
        resolve_job_user(job_user, server_uid=SOMEONE)


def test_a_named_user_comes_with_its_own_ids_and_groups(job_user: str) -> None:
    entry = pwd.getpwnam(job_user)
    for run_as in (job_user, str(entry.pw_uid)):
        user = resolve_job_user(run_as, server_uid=ROOT)
        assert user is not None
        assert (user.name, user.uid, user.gid) == (job_user, entry.pw_uid, entry.pw_gid)
        assert user.groups == (entry.pw_gid,)
        assert 0 not in user.groups


def test_settings_read_run_as_runs_dir_and_sandbox() -> None:
    settings = load_settings(
        {"JOBYARD_RUN_AS": "jobs", "JOBYARD_RUNS_DIR": "/srv/runs", "JOBYARD_SANDBOX": "BWRAP"}
    )
    assert (settings.run_as, settings.runs_dir, settings.sandbox) == (
        "jobs",
        Path("/srv/runs"),
        "bwrap",
    )
    defaults = load_settings({})
    assert (defaults.run_as, defaults.sandbox) == ("", "none")
    assert defaults.effective_runs_dir.name == f"jobyard-runs-{os.getuid()}"
    with pytest.raises(ValidationFailed, match="JOBYARD_SANDBOX must be one of none, bwrap"):
        load_settings({"JOBYARD_SANDBOX": "docker"})


def _boxed(sandbox: str) -> Confinement:
    return Confinement(
        user=None,
        login="jobs",
        runs_root=Path("/run/jobyard"),
        sandbox=sandbox,
        bwrap="/usr/bin/bwrap",
        hidden=("/srv/jobyard",),
    )


def test_without_a_sandbox_the_argv_is_the_jobs_own() -> None:
    argv = confinement.sandboxed_argv(
        _boxed("none"), ["echo", "hi"], run_dir="/run/jobyard/ab", switches={"network": False}
    )
    assert argv == ["echo", "hi"]


def test_bwrap_hides_the_data_and_the_runs_and_binds_what_the_package_says() -> None:
    argv = confinement.sandboxed_argv(
        _boxed("bwrap"),
        ["echo", "hi"],
        run_dir="/run/jobyard/ab",
        switches={"network": False, "writable_paths": ["/srv/out"]},
    )
    pairs = list(itertools.pairwise(argv))
    assert argv[0] == "/usr/bin/bwrap"
    assert argv[-3:] == ["--", "echo", "hi"]
    assert ("--ro-bind", "/") in pairs
    assert ("--tmpfs", "/tmp") in pairs
    assert ("--tmpfs", "/srv/jobyard") in pairs
    assert ("--tmpfs", "/run/jobyard") in pairs
    assert ("--bind", "/run/jobyard/ab") in pairs
    assert ("--bind", "/srv/out") in pairs
    assert "--unshare-net" in argv
    assert "--unshare-pid" in argv
    online = confinement.sandboxed_argv(
        _boxed("bwrap"), ["true"], run_dir="/run/jobyard/cd", switches={}
    )
    assert "--unshare-net" not in online


def test_every_jobyard_process_is_non_dumpable_with_a_private_umask() -> None:
    code = (
        "import os; from jobyard.worker import hardening; hardening.harden_process(); "
        "print(hardening.is_dumpable(), oct(os.umask(0)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "0o77"]


def test_db_upgrade_makes_the_data_directory_and_database_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["JOBYARD_DATA_DIR"] = str(data)
    subprocess.run(
        [sys.executable, "-m", "jobyard", "db", "upgrade"], env=env, capture_output=True, check=True
    )
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = list(data.glob("jobyard.db*"))
    assert data / "jobyard.db" in files
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
