"""Who a worker's jobs run as, where, and in which sandbox: decided once, at the worker's
start, from `JOBYARD_RUN_AS`, `JOBYARD_JOB_UIDS`, `JOBYARD_RUNS_DIR` and `JOBYARD_SANDBOX`.

Jobs never run as the server's user unless told to (`JOBYARD_RUN_AS=server`, logged loudly
at every start): started as root, jobyard runs them as the system user `jobyard-job`
(created when missing); started as anyone else, it refuses to run jobs until told which.
As `jobyard-job` (or with `JOBYARD_JOB_UIDS`), each running job also gets a uid of its own,
with that user's name and group (see `uids`).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobyard.domain.models import RunProcess
from jobyard.errors import JobyardError
from jobyard.settings import JOB_UIDS_NONE, RUN_AS_SERVER, Settings, parse_job_uids
from jobyard.worker import rundir, survivors, uids
from jobyard.worker.spawning import JobUser
from jobyard.worker.uids import JobUids

logger = logging.getLogger(__name__)

JOB_USER = "jobyard-job"
USERADD = (
    "useradd",
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    "/nonexistent",
    "--shell",
    "/usr/sbin/nologin",
)
BWRAP = "bwrap"
# The job uids as `jobyard-job`: 64 Ki uids in a range nothing assigns (systemd's UIDS-GIDS
# summary: above its containers' ranges, below its foreign range and 2^31), 0x7777xxxx.
DEFAULT_JOB_UIDS = (0x7777_0000, 0x7777_FFFF)
CHECK_SECONDS = 30


class ConfinementError(JobyardError):
    """Jobs cannot be run as configured."""


@dataclass(frozen=True)
class Confinement:
    """How every job of a worker is confined."""

    user: JobUser | None  # None: the server's own user (JOBYARD_RUN_AS=server)
    login: str  # the name jobs run as, for USER and LOGNAME
    runs_root: Path
    sandbox: str  # "none" or "bwrap"
    bwrap: str = ""
    hidden: tuple[str, ...] = ()  # what bwrap covers with an empty tmpfs: the data directory
    uids: JobUids | None = None  # a uid for each running job; None: each runs as `user`

    def take_user(self) -> tuple[JobUser | None, bool]:
        """Who the next job runs as, and whether to sweep that uid before (see `uids`)."""
        if self.uids is None:
            return self.user, False
        return self.uids.take()

    def give_back(self, user: JobUser | None, *, swept: bool) -> None:
        """A job has ended: its uid may run the next (`swept`: as the spawner reported)."""
        if self.uids is not None and user is not None:
            self.uids.give_back(user, swept=swept)

    def stop_survivors(
        self, recorded: Sequence[RunProcess], is_run_token: Callable[[str, str], bool]
    ) -> None:
        """Stop what dead workers' jobs left running on this host, before their runs are
        retried: every process of a job uid no live worker holds, and the recorded
        processes (`recorded`) that are still their runs' (see `survivors`; `is_run_token`
        tells a run's token from its stored hash)."""
        if self.uids is not None:
            swept = self.uids.stop_survivors()
            if swept:
                logger.warning("killed what ran as the job uids %s of a dead worker", swept)
        stopped = survivors.stop_groups(recorded, uids=self.job_uids(), is_run_token=is_run_token)
        if stopped:
            logger.warning("killed the processes of runs %s of a dead worker", stopped)

    def job_uids(self) -> Collection[int]:
        """Every uid a job of this host may run as."""
        if self.uids is not None:
            first, last = self.uids.span
            return range(first, last + 1)
        return {self.user.uid if self.user is not None else os.getuid()}

    def release(self) -> None:
        """Every job has ended: let go of the job uids."""
        if self.uids is not None:
            self.uids.release()


def server_login(uid: int | None = None) -> str:
    uid = os.getuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def job_user(entry: pwd.struct_passwd) -> JobUser:
    """A user's ids and its own groups (those of /etc/group; never the server's)."""
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def find_user(name_or_uid: str) -> pwd.struct_passwd | None:
    try:
        if name_or_uid.isdigit():
            return pwd.getpwuid(int(name_or_uid))
        return pwd.getpwnam(name_or_uid)
    except KeyError:
        return None


def _run_or_explain(command: list[str], *, failed: str, hint: str, **options: Any) -> None:
    """Run a set-up command; if it fails, a `ConfinementError` that quotes it, says what it
    answered, and what to do."""
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=CHECK_SECONDS, **options)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        answer = detail.decode(errors="replace").strip() or str(error)
        raise ConfinementError(f"{failed} ({' '.join(command)}: {answer}); {hint}") from None


def create_job_user(name: str = JOB_USER) -> None:
    try:
        _run_or_explain(
            [*USERADD, name],
            failed=f"cannot create the user {name} that jobs run as",
            hint="create it yourself, or set JOBYARD_RUN_AS to an unprivileged user",
        )
    except ConfinementError:
        if find_user(name) is None:
            raise
        return  # another jobyard process on this host made it first: the same user
    logger.warning("created the system user %s that jobs run as", name)


def resolve_job_user(
    run_as: str,
    *,
    server_uid: int,
    create: Callable[[str], None] = create_job_user,
) -> JobUser | None:
    """The user jobs run as; None for `server` (the server's own user, not isolated)."""
    if run_as == RUN_AS_SERVER:
        return None
    login = server_login(server_uid)
    if not run_as:
        if server_uid != 0:
            raise ConfinementError(
                "jobs need a user of their own: start jobyard as root (it then runs them as "
                f"the system user {JOB_USER}), set JOBYARD_RUN_AS to an unprivileged user "
                f"(as root), or set JOBYARD_RUN_AS=server to run them as {login} without "
                "isolation"
            )
        entry = find_user(JOB_USER)
        if entry is None:
            create(JOB_USER)
            entry = find_user(JOB_USER)
        if entry is None:
            raise ConfinementError(f"the user {JOB_USER} is still missing after useradd")
    else:
        entry = find_user(run_as)
        if entry is None:
            raise ConfinementError(f"JOBYARD_RUN_AS names no user on this host: {run_as!r}")
    if entry.pw_uid in (0, server_uid) or entry.pw_gid == 0:
        raise ConfinementError(
            f"JOBYARD_RUN_AS={run_as or JOB_USER} is root or the server's own user; set "
            "JOBYARD_RUN_AS=server to run jobs as the server's user, without isolation"
        )
    if server_uid != 0:
        raise ConfinementError(
            f"running jobs as {entry.pw_name} needs root: start jobyard as root, or set "
            f"JOBYARD_RUN_AS=server to run them as {login} without isolation"
        )
    return job_user(entry)


def hidden_paths(settings: Settings) -> tuple[str, ...]:
    """The data directory, and the SQLite file's directory wherever it is."""
    found = [settings.data_dir.resolve()]
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        found.append(Path(url.removeprefix("sqlite:///")).resolve().parent)
    return tuple(dict.fromkeys(str(p) for p in found if p != Path("/")))


def check_bwrap(user: JobUser | None) -> str:
    """The bubblewrap binary, once it has run a command as the jobs' user."""
    found = shutil.which(BWRAP)
    if found is None:
        raise ConfinementError(
            "JOBYARD_SANDBOX=bwrap, but bwrap is not installed (Debian: apt install bubblewrap)"
        )
    _run_or_explain(
        [found, "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "true"],
        failed="JOBYARD_SANDBOX=bwrap, but bwrap cannot run as the jobs' user",
        hint="are user namespaces allowed (sysctl kernel.unprivileged_userns_clone)?",
        cwd="/",
        env={"PATH": os.defpath},
        user=None if user is None else user.uid,
        group=None if user is None else user.gid,
        extra_groups=None if user is None else list(user.groups),
    )
    return found


def job_uid_range(settings: Settings, *, server_uid: int) -> tuple[int, int] | None:
    """The range of `JOBYARD_JOB_UIDS`; unset, `DEFAULT_JOB_UIDS` where jobs run as
    `jobyard-job` (a named user's jobs keep its uid, which may own files they need)."""
    explicit = parse_job_uids(settings.job_uids)
    if explicit is None:
        default = not settings.job_uids and not settings.run_as and server_uid == 0
        return DEFAULT_JOB_UIDS if default else None
    if server_uid != 0:
        raise ConfinementError(
            f"JOBYARD_JOB_UIDS={settings.job_uids} needs root (the spawners switch to each "
            f"job's uid): start jobyard as root, or unset it"
        )
    if settings.run_as == RUN_AS_SERVER:
        raise ConfinementError(
            "JOBYARD_JOB_UIDS gives each job a uid of its own, but JOBYARD_RUN_AS=server runs "
            f"them as the server's: unset one of them (or set JOBYARD_JOB_UIDS={JOB_UIDS_NONE})"
        )
    return explicit


def lease_job_uids(
    settings: Settings, user: JobUser | None, *, server_uid: int, slots: int
) -> JobUids | None:
    """The job uids for `slots` running jobs; None: they all run as `user`. A configured
    range that cannot be leased is an error; the default range, a warning (its jobs then
    share the one user, as they would without it)."""
    found = job_uid_range(settings, server_uid=server_uid)
    if found is None or user is None:
        return None
    try:
        return uids.lease(user, *found, slots=slots)
    except uids.UidsUnavailable as error:
        if settings.job_uids:
            raise ConfinementError(error.message) from None
        logger.warning(
            "jobs run as %s, all with the one uid, so NOT separated from each other: the "
            "default job uids cannot be used (%s); set JOBYARD_JOB_UIDS to a free range, or "
            "to %s",
            user.name,
            error.message.replace(f"JOBYARD_JOB_UIDS={found[0]}-{found[1]}", "the default"),
            JOB_UIDS_NONE,
        )
        return None


def prepare(settings: Settings, *, slots: int | None = None) -> Confinement:
    """Decide how jobs run, and make ready for it (the user, the job uids for `slots`
    running jobs, by default `settings.workers`, the runs' root), or raise
    `ConfinementError` with what to do."""
    uid = os.geteuid()
    job_uid_range(settings, server_uid=uid)  # its refusals first: they name the setting
    user = resolve_job_user(settings.run_as, server_uid=uid)
    if user is None:
        logger.warning(
            "JOBYARD_RUN_AS=server: jobs run as %s, the server's own user, and are NOT "
            "isolated from the server, its data or each other%s",
            server_login(uid),
            " (that is root)" if uid == 0 else "",
        )
    runs_root = settings.effective_runs_dir.resolve()
    try:
        rundir.prepare_root(str(runs_root))
    except OSError as error:
        raise ConfinementError(f"cannot prepare the runs' directory {runs_root}: {error}") from None
    slots = settings.workers if slots is None else slots
    leased = lease_job_uids(settings, user, server_uid=uid, slots=slots)
    try:
        bwrap = ""
        if settings.sandbox == "bwrap":
            bwrap = check_bwrap(user if leased is None else leased.first_user)
    except BaseException:
        if leased is not None:
            leased.release()
        raise
    if leased is not None:
        logger.info(
            "jobs run as %s, each with a uid of its own: %d leased, %d to %d",
            user.name if user else "",
            2 * len(leased.pairs),
            min(min(pair) for pair in leased.pairs),
            max(max(pair) for pair in leased.pairs),
        )
    return Confinement(
        user=user,
        login=server_login(uid) if user is None else user.name,
        runs_root=runs_root,
        sandbox=settings.sandbox,
        bwrap=bwrap,
        hidden=hidden_paths(settings),
        uids=leased,
    )


def sandboxed_argv(
    confinement: Confinement,
    argv: Sequence[str],
    *,
    run_dir: str,
    switches: Mapping[str, object],
) -> list[str]:
    """The argv that runs `argv` in the configured sandbox (itself without one).

    bubblewrap: the system read-only, a private /tmp, /dev and /proc (and PID, IPC and UTS
    namespaces), the data directory and the other runs hidden, the run's own directory
    writable; the package's `sandbox` switches add `network: false` (no network) and
    `writable_paths` (bound read-write)."""
    if confinement.sandbox != "bwrap":
        return list(argv)
    command = [confinement.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    command += ["--tmpfs", "/tmp"]  # noqa: S108 (a private, empty /tmp, not a use of it)
    for path in (*confinement.hidden, str(confinement.runs_root)):
        command += ["--tmpfs", path]
    command += ["--bind", run_dir, run_dir]
    writable = switches.get("writable_paths")
    for path in writable if isinstance(writable, list) else ():
        command += ["--bind", str(path), str(path)]
    command += ["--chdir", run_dir, "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    command += ["--unshare-cgroup-try", "--die-with-parent"]
    if switches.get("network") is False:
        command.append("--unshare-net")
    return [*command, "--", *argv]
