"""How one job process starts: what to run (`ProcessSpec`) and as whom (`JobUser`); the spawn
itself (`posix_spawn` where the caller allows it, else `subprocess.Popen`), in a session of its
own with its output on two pipes; a spawn that fails as a shell would report it; and `sweep`,
which kills whatever a job's own uid left running.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import rundir

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_CAP_BYTES = 10 * 1024 * 1024
DEFAULT_GRACE_SECONDS = 5.0
# Shell conventions, so a failed spawn reads like a shell's failure.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126


class Stream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class JobUser:
    """The Unix user a child runs as (switching to it needs root): its ids and groups."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # the supplementary groups, the user's own (never the spawner's)
    # A uid nothing runs as, paired with `uid` alone: once a child of this user has ended,
    # every process still running as `uid` is killed (see `sweep`). None: `uid` is shared
    # by other children, so only the child's process group is killed.
    sweeper: int | None = None


class TooLateToStart(Exception):
    """A child asked to start past its `ProcessSpec.start_by`: it was never spawned."""


@dataclass(frozen=True)
class ProcessSpec:
    """What to run and within which limits."""

    argv: Sequence[str]
    env: Mapping[str, str]  # the child's whole environment; nothing is inherited
    cwd: str | None = None
    timeout: float | None = None  # seconds from spawn; None means no limit
    output_cap: int = DEFAULT_OUTPUT_CAP_BYTES  # bytes passed on, stdout and stderr together
    grace: float = DEFAULT_GRACE_SECONDS  # seconds between SIGTERM and SIGKILL
    user: JobUser | None = None  # None: the spawning process's own user
    # `cwd` is the child's own directory: made (0700, the child's user's) before the spawn,
    # removed with everything in it once the child has ended.
    own_cwd: bool = False
    # Kill whatever runs as `user` before the spawn too (see `sweep`): what an earlier child
    # of that uid left may not have been swept (its spawner died, or another process ran it).
    sweep_first: bool = False
    # Seconds since the epoch past which it must not start at all (None: no such time). A
    # claimed job's lease runs out: a start that leaves late (its worker frozen after the
    # claim) could overlap the run another worker's reaper has begun meanwhile.
    start_by: float | None = None

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("argv must name a program")
        if self.timeout is not None and self.timeout < 0:
            raise ValueError("timeout must not be negative")
        if self.output_cap < 0:
            raise ValueError("output_cap must not be negative")
        if self.grace < 0:
            raise ValueError("grace must not be negative")
        if self.own_cwd and not (self.cwd and os.path.isabs(self.cwd)):
            raise ValueError("a child's own directory must be an absolute path")


OutputCallback = Callable[[Stream, bytes], None]
# Told a child's pid and when it came to exist (seconds since the epoch).
StartCallback = Callable[[int, float], None]


@dataclass
class Spawned:
    """A started child: its pid, the read ends of its stdout and stderr pipes, and how to
    reap it."""

    pid: int
    stdout: int
    stderr: int
    reap: Callable[[], int]  # waits for the exit: the exit code, or minus the signal
    at: float  # when it came to exist, in seconds since the epoch
    returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.reap()
        return self.returncode


# The child's stdin, stdout and stderr. A descriptor of ours among them would be dup2'd onto
# itself, which keeps it close-on-exec: Popen handles that case, posix_spawn does not.
LAST_STDIO_FD = 2
# Python ignores these; a child must not inherit that (as subprocess's restore_signals).
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def spawn(spec: ProcessSpec, *, inherits_nothing: bool) -> Spawned:
    """Start the child with its output on two new pipes.

    `posix_spawn` costs the spawning process a third less CPU than `subprocess.Popen`, but
    closes no descriptor and cannot change directory or user. So it is used only where the
    caller vouches that nothing it holds is inheritable (`inherits_nothing`, a spawner
    process, which is single-threaded): it moves into the child's directory itself, and
    switches its own real ids to the child's user around the spawn (see `_as_user`).
    """
    if spec.own_cwd:
        rundir.make(spec)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        stdin = _devnull()
        ours_apart = min(stdin, out_write, err_write) > LAST_STDIO_FD
        if inherits_nothing and ours_apart:
            if spec.cwd is not None:
                os.chdir(spec.cwd)
            with _as_user(spec.user):
                pid = _posix_spawn(spec, (stdin, out_write, err_write))
            reap: Callable[[], int] = functools.partial(_reap, pid)
        else:
            user = spec.user
            proc = subprocess.Popen(
                list(spec.argv),
                stdin=stdin,
                stdout=out_write,
                stderr=err_write,
                env=dict(spec.env),
                cwd=spec.cwd,
                start_new_session=True,
                close_fds=True,
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else list(user.groups),
            )
            pid, reap = proc.pid, proc.wait
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    return Spawned(pid, out_read, err_read, reap, time.time())


@contextlib.contextmanager
def _as_user(user: JobUser | None) -> Iterator[None]:
    """Real ids (and groups) of `user`, effective ids still root's, for one `posix_spawn`
    with `resetids`: the child takes the real ids as its effective ones, and its exec makes
    the saved ones the same, so it holds no trace of root. Restored at once after.

    While switched, `user` could signal this process (its real uid is theirs): the window
    is one spawn long, and the spawner's real uid is root's the rest of the time."""
    if user is None:
        yield
        return
    groups = os.getgroups()
    os.setgroups(user.groups or [user.gid])
    os.setresgid(user.gid, 0, 0)
    os.setresuid(user.uid, 0, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups(groups)


def sweep(user: JobUser | None) -> None:
    """Kill every process running as `user.uid` (a user with a sweeper uid of its own):
    what its child left behind, such as a daemon that moved to a session of its own or a
    setuid program it started.

    kill(-1) signals every process the caller may signal, but itself. For that while, this
    process's effective uid is the user's, so it may signal those processes (those whose
    real or saved uid is theirs); its real uid is the sweeper uid, which nothing runs as (a
    real uid of root's would let it signal root's processes too), and its saved uid stays
    root's, to switch back (leaving root's effective uid drops every capability meanwhile).
    None of the user's processes may signal this process in that while: that needs their
    uid to be its real or saved one. The kernel signals them under a lock that holds their
    forks back, so none escapes by forking. A few microseconds of CPU; it changes the ids of
    the whole process, so only a spawner, single-threaded, does it."""
    if user is None or user.sweeper is None:
        return
    os.setresuid(user.sweeper, user.uid, 0)
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:  # no other process at all
        pass
    finally:
        os.setresuid(0, 0, 0)


def _posix_spawn(spec: ProcessSpec, stdio: tuple[int, int, int]) -> int:
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
    program = spec.argv[0]

    def spawn(executable: str) -> int:
        return os.posix_spawn(
            executable,
            list(spec.argv),
            dict(spec.env),
            file_actions=actions,
            setsid=True,  # its own session, as with Popen(start_new_session=True)
            setsigdef=RESTORED_SIGNALS,
            resetids=spec.user is not None,
        )

    try:
        try:
            return spawn(_PROGRAMS.find(program, spec.env))
        except OSError:  # maybe moved since it was last looked up: look again, once
            if not _PROGRAMS.forget(program, spec.env):
                raise
            return spawn(_PROGRAMS.find(program, spec.env))
    except OSError as exc:  # named after the program as given, as Popen names it
        raise OSError(exc.errno, exc.strerror, program) from None


class _ProgramLookup:
    """Where exec would find a program: itself if it holds a slash, else the first
    executable of that name on the child's PATH; failing that, the first file of that name
    (spawning it fails as exec does, permission denied).

    A program found on a PATH is looked up again after `PROGRAM_LOOKUP_SECONDS` (or when it
    could not be spawned): each look-up costs a failed access() and stat() per directory
    before the right one: over a quarter of a spawner's CPU, with a long PATH, if done every spawn.
    """

    def __init__(self) -> None:
        self._found: dict[tuple[str, str | None], tuple[str, float]] = {}

    def find(self, program: str, env: Mapping[str, str]) -> str:
        if os.sep in program:
            return program
        key = (program, env.get("PATH"))
        now = time.monotonic()
        known = self._found.get(key)
        if known is not None and now < known[1]:
            return known[0]
        path, runnable = _look_up(program, env)
        if runnable:
            if len(self._found) >= PROGRAMS_REMEMBERED:
                self._found.clear()
            self._found[key] = (path, now + PROGRAM_LOOKUP_SECONDS)
        return path

    def forget(self, program: str, env: Mapping[str, str]) -> bool:
        """Look it up afresh next time; whether it was remembered."""
        return self._found.pop((program, env.get("PATH")), None) is not None


def _look_up(program: str, env: Mapping[str, str]) -> tuple[str, bool]:
    """The file, and whether it may be executed."""
    unrunnable = None
    for directory in os.get_exec_path(env):
        path = os.path.join(directory, program)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path, True
        if unrunnable is None and os.path.exists(path):
            unrunnable = path
    if unrunnable is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return unrunnable, False


PROGRAM_LOOKUP_SECONDS = 1.0
PROGRAMS_REMEMBERED = 1024
_PROGRAMS = _ProgramLookup()


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@functools.cache
def _devnull() -> int:
    """One /dev/null for every child's stdin, instead of an open and a close per spawn."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def spawn_failure(
    spec: ProcessSpec, exc: OSError | ValueError, on_output: OutputCallback
) -> ProcessEnd:
    detail = getattr(exc, "strerror", None) or str(exc)
    filename = getattr(exc, "filename", None)
    if filename is not None and filename != spec.argv[0]:
        detail = f"{detail} ({filename})"  # e.g. the cwd, not the program, is missing
    message = f"jobyard: cannot execute {spec.argv[0]}: {detail}\n"
    logger.info("cannot execute %s: %s", spec.argv[0], detail)
    on_output(Stream.STDERR, message.encode("utf-8", "backslashreplace"))
    code = EXIT_NOT_FOUND if getattr(exc, "errno", None) == errno.ENOENT else EXIT_CANNOT_EXECUTE
    return ProcessEnd(
        pid=0,
        exit_code=code,
        signal=None,
        timed_out=False,
        cancelled=False,
        output_bytes=0,
        truncated=False,
    )
