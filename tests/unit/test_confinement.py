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
from jobyard.settings import Settings, load_settings, parse_job_uids
from jobyard.worker import confinement, uids
from jobyard.worker.confinement import (
    Confinement,
    ConfinementError,
    job_uid_range,
    resolve_job_user,
)
from jobyard.worker.spawning import JobUser

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
    with pytest.raises(ValidationFailed, match="JOBYARD_SANDBOX must be one of 'none' or 'bwrap'"):
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


# --- a uid of its own for each job (JOBYARD_JOB_UIDS) --------------------------------------


def test_job_uids_are_a_range_or_none_and_anything_else_is_named() -> None:
    assert load_settings({"JOBYARD_JOB_UIDS": " 200000-200999 "}).job_uids == "200000-200999"
    assert parse_job_uids("200000-200999") == (200000, 200999)
    assert parse_job_uids("none") is None
    assert parse_job_uids("") is None
    for wrong in ("abc", "200000", "5-3", "0-10", "-5", "5-", "1-2147483648", "\uff11-\uff12"):
        with pytest.raises(ValidationFailed, match="JOBYARD_JOB_UIDS"):
            load_settings({"JOBYARD_JOB_UIDS": wrong})


def test_as_jobyard_job_each_job_has_a_uid_of_its_own_by_default_a_named_user_keeps_its() -> None:
    assert job_uid_range(Settings(), server_uid=ROOT) == confinement.DEFAULT_JOB_UIDS
    assert job_uid_range(Settings(job_uids="none"), server_uid=ROOT) is None
    assert job_uid_range(Settings(run_as="someone"), server_uid=ROOT) is None
    assert job_uid_range(Settings(run_as="server"), server_uid=ROOT) is None
    assert job_uid_range(Settings(run_as="server"), server_uid=SOMEONE) is None
    named = Settings(run_as="someone", job_uids="300000-300099")
    assert job_uid_range(named, server_uid=ROOT) == (300000, 300099)
    first, last = confinement.DEFAULT_JOB_UIDS
    assert last - first + 1 == 65536
    assert last < 2**31


def test_a_range_needs_root_and_jobs_of_a_user_of_their_own() -> None:
    with pytest.raises(ConfinementError, match="JOBYARD_JOB_UIDS=300000-300099 needs root"):
        job_uid_range(Settings(job_uids="300000-300099"), server_uid=SOMEONE)
    with pytest.raises(ConfinementError, match="JOBYARD_RUN_AS=server runs them as the server"):
        job_uid_range(Settings(run_as="server", job_uids="300000-300099"), server_uid=ROOT)


BASE = JobUser("jobs", 4242, 4242, (4242,))


def test_a_range_holding_a_users_uid_is_refused_and_names_the_user() -> None:
    entry = next(e for e in pwd.getpwall() if e.pw_uid > 0)
    with pytest.raises(uids.UidsUnavailable) as raised:
        uids.lease(BASE, entry.pw_uid, entry.pw_uid + 3, slots=1)
    assert f"uid {entry.pw_uid} is the user {entry.pw_name}'s" in raised.value.message


def test_a_range_smaller_than_two_uids_per_slot_is_refused() -> None:
    with pytest.raises(uids.UidsUnavailable) as raised:
        uids.lease(BASE, 2_052_990_000, 2_052_990_002, slots=2)
    assert "holds 3 uids, but a worker of 2 slots needs 4" in raised.value.message


def test_a_range_overlapping_subordinate_uids_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\n")
    monkeypatch.setattr(uids, "SUBUID_FILE", str(subuid))
    with pytest.raises(uids.UidsUnavailable, match="alice's subordinate uids 100000-165535"):
        uids.lease(BASE, 165_000, 165_999, slots=1)
    uids.check_unassigned(165_536, 165_999, "JOBYARD_JOB_UIDS=165536-165999")  # beside: fine


HOLD_ALL = """
import sys
from jobyard.worker import uids
from jobyard.worker.spawning import JobUser

first, last = map(int, sys.argv[1:])
uids.lease(JobUser("jobs", 4242, 4242, (4242,)), first, last, slots=(last - first + 1) // 2)
print("held", flush=True)
sys.stdin.read()
"""


def test_workers_lease_uids_no_other_worker_holds(job_uid_range: tuple[int, int]) -> None:
    first, last = job_uid_range
    one = uids.lease(BASE, first, last, slots=3)
    two = uids.lease(BASE, first, last, slots=3)
    held = [uid for leased in (one, two) for pair in leased.pairs for uid in pair]
    assert len(held) == len(set(held)) == 12
    assert all(first <= uid <= last for uid in held)
    one.release()
    two.release()

    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_ALL, str(first), str(last)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline() == "held\n"
        with pytest.raises(uids.UidsUnavailable) as raised:
            uids.lease(BASE, first, last, slots=1)
        assert "only 0 of its uids are free" in raised.value.message
        assert "other jobyard workers on this host hold the rest" in raised.value.message
    finally:
        other.communicate("")
    uids.lease(BASE, first, last, slots=1).release()  # its uids came free with it


def test_each_job_takes_a_uid_no_running_one_has_and_learns_whether_to_sweep_it(
    job_uid_range: tuple[int, int],
) -> None:
    leased = uids.lease(BASE, *job_uid_range, slots=2)
    try:
        a, sweep_a = leased.take()
        b, sweep_b = leased.take()
        assert a.uid != b.uid
        assert sweep_a  # a dead worker may have left something running as it
        assert sweep_b
        assert (a.name, a.gid, a.groups) == ("jobs", 4242, (4242,))
        assert a.sweeper not in (None, a.uid, b.uid, b.sweeper)
        leased.give_back(a, swept=True)
        assert leased.take() == (a, False)
        leased.give_back(a, swept=False)  # its spawner died: not known to be swept
        assert leased.take() == (a, True)
    finally:
        leased.release()


def test_prepare_leases_two_uids_per_slot_with_the_users_name_and_group(
    job_user: str, job_uid_range: tuple[int, int], tmp_path: Path
) -> None:
    first, last = job_uid_range
    settings = Settings(run_as=job_user, job_uids=f"{first}-{last}", runs_dir=tmp_path / "r")
    confined = confinement.prepare(settings, slots=3)
    try:
        assert confined.uids is not None
        assert len(confined.uids.pairs) == 3
        user, _ = confined.take_user()
        entry = pwd.getpwnam(job_user)
        assert user is not None
        assert (user.name, user.gid, user.groups) == (job_user, entry.pw_gid, (entry.pw_gid,))
        assert first <= user.uid <= last
        assert confined.login == job_user
    finally:
        confined.release()


def test_a_configured_range_that_cannot_be_leased_refuses_the_default_one_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, last = confinement.DEFAULT_JOB_UIDS
    many = 40_000  # slots: more than the 64 Ki uids hold, two per slot
    explicit = Settings(job_uids=f"{first}-{last}")
    with pytest.raises(ConfinementError, match="but a worker of 40000 slots needs 80000"):
        confinement.lease_job_uids(explicit, BASE, server_uid=ROOT, slots=many)
    with caplog.at_level("WARNING", logger="jobyard.worker.confinement"):
        assert confinement.lease_job_uids(Settings(), BASE, server_uid=ROOT, slots=many) is None
    assert "NOT separated from each other" in caplog.text
    assert "the default holds 65536 uids" in caplog.text
