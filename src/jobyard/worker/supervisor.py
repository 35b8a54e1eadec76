"""Run child processes to completion: many at once from one thread (`Supervisor`, which a
worker's spawner processes run), or one (`run_process`).

One thread watches every child through one poll set. A thread per child measured worse:
each child's pipes and exit woke its own thread, and dozens of threads took turns at the GIL.
Plain threads and poll(), not asyncio: spawning from asyncio or uvloop measured slower.

The child gets its own session (and so its own process group): a timeout or cancel signals the
whole group, and whatever is left of the group is killed once the child exits, so no descendant
outlives its job unless it deliberately moved to another session. A child with a uid of its
own (a `JobUser` with a sweeper) leaves nothing at all: every process of that uid is killed
once it has ended (`sweep`).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import logging
import math
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import rundir

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
DEFAULT_OUTPUT_CAP_BYTES = 10 * 1024 * 1024
DEFAULT_GRACE_SECONDS = 5.0
DEFAULT_POLL_INTERVAL_SECONDS = 0.2
# Once the child has exited its output is at most one pipe buffer away, so a pipe still open
# after this long is held by a descendant and will not reach EOF on its own.
EXIT_DRAIN_SECONDS = 1.0
# Without a pidfd, an exit that happens after both pipes closed is found by polling; start fast
# (most children exit right after closing their pipes) and back off to the poll interval.
FIRST_EXIT_POLL_SECONDS = 0.001
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


def run_process(
    spec: ProcessSpec,
    *,
    on_start: Callable[[int], None],
    on_output: OutputCallback,
    should_cancel: Callable[[], bool],
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
    inherits_nothing: bool = False,
) -> ProcessEnd:
    """Run `spec` to the end, streaming its output, and say how it ended.

    A program that cannot be started is an outcome (exit code 127 or 126 with a message on
    stderr), not an exception. An exception raised by a callback kills the process group, reaps
    the child and then propagates.
    """
    ended: list[tuple[ProcessEnd | None, Exception | None]] = []
    with Supervisor(poll_interval=poll_interval, inherits_nothing=inherits_nothing) as supervisor:
        supervisor.start(
            spec,
            on_start=on_start,
            on_output=on_output,
            should_cancel=should_cancel,
            on_end=lambda outcome, error: ended.append((outcome, error)),
        )
        while not ended:
            supervisor.step(None)
    outcome, error = ended[0]
    if outcome is None:
        raise error or RuntimeError("the child ended without an outcome")
    return outcome


EndCallback = Callable[[ProcessEnd | None, Exception | None], None]
FdHandler = Callable[[int], None]


class Supervisor:
    """Children started from one thread and watched together: `start` them, then call `step`
    from the same thread until each one's `on_end` has been called."""

    def __init__(
        self,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        inherits_nothing: bool = False,
    ) -> None:
        """`inherits_nothing`: the caller vouches that no descriptor of this process but 0-2
        is inheritable, so children are spawned without closing any (faster; a spawner)."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._poll_interval = poll_interval
        self._inherits_nothing = inherits_nothing
        # poll(), not epoll: registering is bookkeeping in this process, where epoll costs a
        # system call per change (and each call here is a chance to lose the GIL).
        self._poller = select.poll()
        self._owners: dict[int, Child] = {}  # watched fd -> the child it belongs to
        self._handlers: dict[int, FdHandler] = {}  # other watched fds -> what to do
        self._children: dict[Child, EndCallback] = {}

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __len__(self) -> int:
        """How many children are still watched."""
        return len(self._children)

    def start(
        self,
        spec: ProcessSpec,
        *,
        on_start: Callable[[int], None],
        on_output: OutputCallback,
        should_cancel: Callable[[], bool],
        on_end: EndCallback,
    ) -> Child | None:
        """Spawn a child; `on_end` is called once, with its outcome or a callback's error.
        A program that cannot be started ends at once, here, and gives None: no child."""
        swept = spec.user is not None and spec.user.sweeper is not None
        if swept and not self._inherits_nothing:
            raise ValueError("sweeping a user's processes switches this process's ids: a spawner's")
        if swept and spec.sweep_first:
            try:
                sweep(spec.user)
            except OSError as error:
                on_end(None, error)
                return None
        try:
            proc = _spawn(spec, inherits_nothing=self._inherits_nothing)
        except (OSError, ValueError) as exc:  # ValueError: an argv or env Popen cannot pass on
            rundir.remove(spec)
            try:
                outcome = _spawn_failure(spec, exc, on_output)
            except Exception as error:
                on_end(None, error)
            else:
                on_end(outcome, None)
            return None
        logger.debug("started pid %d: %s", proc.pid, spec.argv[0])
        child = Child(spec, proc, self, on_output, should_cancel, self._poll_interval)
        self._children[child] = on_end
        try:
            child.watch()
            on_start(proc.pid)
        except Exception as error:
            self._end(child, error)
            return None
        return child

    def abort(self, child: Child, error: Exception) -> None:
        """End a child now: kill its group, reap it, and give `on_end` this error."""
        if child in self._children:
            self._end(child, error)

    def watch_fd(self, fd: int, events: int, on_event: FdHandler) -> None:
        """Watch a descriptor of the caller's along with the children (again: new events);
        `on_event` gets the poll events of each step that found it ready."""
        self._handlers[fd] = on_event
        self._poller.register(fd, events)

    def unwatch_fd(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None:
            self._poller.unregister(fd)

    def step(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds (None: as long as the children allow) for anything to
        happen, then move on the children it happened to, or whose time has come; call
        `on_end` for those that ended."""
        now = time.monotonic()
        waits = [child.next_wait(now) for child in self._children]
        if timeout is not None:
            waits.append(timeout)
        wait = min(waits, default=self._poll_interval)
        stirred: set[Child] = set()
        for fd, events in self._poller.poll(math.ceil(max(0.0, wait) * 1000)):
            owner = self._owners.get(fd)
            if owner is not None:
                stirred.add(owner)
                self._guarded(owner, owner.ready, fd)
            elif (handler := self._handlers.get(fd)) is not None:
                handler(events)
        now = time.monotonic()
        # Only these: asking each of dozens of quiet children whether it exited would cost a
        # system call each, every step. (poll is level-triggered: nothing is missed.)
        for child in [c for c in self._children if c in stirred or c.due(now)]:
            if self._guarded(child, child.advance, now):
                self._end(child, None)

    def hand_over(self, child: Child, fd: int) -> None:
        self._owners[fd] = child
        self._poller.register(fd, select.POLLIN)

    def release(self, fd: int) -> None:
        del self._owners[fd]
        self._poller.unregister(fd)

    def _guarded(self, child: Child, action: Callable[[Any], bool | None], arg: Any) -> bool:
        """Run one child's step; a failing callback ends that child alone."""
        if child not in self._children:  # ended by an earlier failure in this step
            return False
        try:
            return bool(action(arg))
        except Exception as error:
            self._end(child, error)
            return False

    def _end(self, child: Child, error: Exception | None) -> None:
        on_end = self._children.pop(child)
        try:
            outcome = child.finish()
        finally:
            child.close()
            try:
                sweep(child.spec.user)
            except OSError as failed:  # its uid may still run something: not an outcome
                logger.error("could not sweep uid %s: %s", child.spec.user, failed)
                error = error or failed
            finally:
                rundir.remove(child.spec)
        on_end(None if error else outcome, error)

    def close(self) -> None:
        """Kill and reap whatever still runs, and release the descriptors."""
        for child in list(self._children):
            self._end(child, None)


@dataclass
class Spawned:
    """A started child: its pid, the read ends of its stdout and stderr pipes, and how to
    reap it."""

    pid: int
    stdout: int
    stderr: int
    reap: Callable[[], int]  # waits for the exit: the exit code, or minus the signal
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


def _spawn(spec: ProcessSpec, *, inherits_nothing: bool) -> Spawned:
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
    return Spawned(pid, out_read, err_read, reap)


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
    before the right one, which was over a quarter of a spawner's CPU with a long PATH.
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


def _spawn_failure(
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


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
        os.killpg(pgid, signum)


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it.

    Leaving the zombie in place keeps its pid, and so the group id, from being reused before
    the leftover group is killed.
    """
    try:
        found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return found is not None


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the child exits, where the kernel offers one."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class Child:
    """One running child as its supervisor sees it: its pipes, output budget, deadlines
    and exit."""

    def __init__(
        self,
        spec: ProcessSpec,
        proc: Spawned,
        supervisor: Supervisor,
        on_output: OutputCallback,
        should_cancel: Callable[[], bool],
        poll_interval: float,
    ) -> None:
        started = time.monotonic()
        self.spec = self._spec = spec
        self._proc = proc
        self._supervisor = supervisor
        self._on_output = on_output
        self._should_cancel = should_cancel
        self._poll_interval = poll_interval
        self._deadline = None if spec.timeout is None else started + spec.timeout
        self._next_cancel_check = started + poll_interval
        self._exit_poll = FIRST_EXIT_POLL_SECONDS
        self._kept = 0
        self._written = 0
        self._truncated = False
        self._timed_out = False
        self._cancelled = False
        self._kill_at: float | None = None
        self._killed = False
        self._exited_at: float | None = None
        # The pipes still open (all of them, from here on: `close` closes what is left).
        self._pipes = {proc.stdout: Stream.STDOUT, proc.stderr: Stream.STDERR}
        self._pidfd: int | None = None
        self._streams: dict[int, Stream | None] = {}  # what each watched fd is; None: the pidfd

    def watch(self) -> None:
        for fd, stream in self._pipes.items():
            os.set_blocking(fd, False)
            self._poll_for(fd, stream)
        self._pidfd = _open_pidfd(self._proc.pid)
        if self._pidfd is not None:
            self._poll_for(self._pidfd, None)

    def _poll_for(self, fd: int, stream: Stream | None) -> None:
        self._streams[fd] = stream
        self._supervisor.hand_over(self, fd)

    def _stop_polling(self, fd: int) -> None:
        del self._streams[fd]
        self._supervisor.release(fd)

    def advance(self, now: float) -> bool:
        """Move on after a wait: notice the exit, enforce the limits; True once it is over
        (exited, and its pipes closed or given up on)."""
        if self._exited_at is None:
            self._note_exit(now)
        if self._exited_at is None:
            self._check_stop(now)
            self._escalate(now)
        elif self._pipes and now >= self._exited_at + EXIT_DRAIN_SECONDS:
            self._abandon_pipes()
        return self._exited_at is not None and not self._pipes

    def finish(self) -> ProcessEnd:
        """Kill what is left of the group and reap the child (at once, once it has exited)."""
        # The unreaped child still pins the group id, so this cannot hit a stranger's group.
        _signal_group(self._proc.pid, signal.SIGKILL)
        return self._outcome(self._proc.wait())

    def due(self, now: float) -> bool:
        """Whether a timer of this child has run out (the rest comes as events on its fds)."""
        if self._exited_at is not None:
            return bool(self._pipes) and now >= self._exited_at + EXIT_DRAIN_SECONDS
        if self._pidfd is None and not self._pipes:
            return True  # nothing left to signal its exit: it is polled for
        return (
            now >= self._next_cancel_check
            or (self._deadline is not None and now >= self._deadline)
            or (self._kill_at is not None and not self._killed and now >= self._kill_at)
        )

    def next_wait(self, now: float) -> float:
        limits = [self._poll_interval]
        if self._exited_at is not None:
            limits.append(self._exited_at + EXIT_DRAIN_SECONDS - now)
        else:
            if self._kill_at is not None and not self._killed:
                limits.append(self._kill_at - now)
            elif self._deadline is not None:
                limits.append(self._deadline - now)
            if self._pidfd is None and not self._pipes:
                limits.append(self._exit_poll)
                self._exit_poll = min(self._exit_poll * 2, self._poll_interval)
        return max(0.0, min(limits))

    def check_soon(self) -> None:
        """Ask `should_cancel` at the supervisor's next step, not at the next poll."""
        self._next_cancel_check = 0.0

    def ready(self, fd: int) -> None:
        stream = self._streams.get(fd)
        if stream is not None:  # the pidfd only wakes the supervisor
            self._read(fd, stream)

    def _read(self, fd: int, stream: Stream) -> None:
        try:
            data = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        if data:
            self._deliver(stream, data)
        else:
            self._close_pipe(fd)

    def _deliver(self, stream: Stream, data: bytes) -> None:
        """Pass on what fits in the output cap; count, but drop, everything after it."""
        self._written += len(data)
        if self._truncated:
            return
        room = self._spec.output_cap - self._kept
        if len(data) <= room:
            self._kept += len(data)
            self._on_output(stream, data)
            return
        if room:
            self._kept += room
            self._on_output(stream, data[:room])
        self._truncated = True
        marker = f"\n[jobyard: output truncated after {self._spec.output_cap} bytes]\n"
        self._on_output(stream, marker.encode())

    def _close_pipe(self, fd: int) -> None:
        self._stop_polling(fd)
        del self._pipes[fd]
        os.close(fd)

    def _note_exit(self, now: float) -> None:
        if not _has_exited(self._proc.pid):
            return
        self._exited_at = now
        if self._pidfd is not None:
            # An exited pidfd stays readable; leaving it registered would spin the loop.
            self._stop_polling(self._pidfd)

    def _check_stop(self, now: float) -> None:
        if self._kill_at is not None:
            return
        if self._deadline is not None and now >= self._deadline:
            self._timed_out = True
        elif now >= self._next_cancel_check:
            self._next_cancel_check = now + self._poll_interval
            self._cancelled = self._should_cancel()
        if self._timed_out or self._cancelled:
            reason = "timed out" if self._timed_out else "cancelled"
            logger.info("pid %d %s; sending SIGTERM to its group", self._proc.pid, reason)
            _signal_group(self._proc.pid, signal.SIGTERM)
            self._kill_at = now + self._spec.grace

    def _escalate(self, now: float) -> None:
        if self._kill_at is not None and not self._killed and now >= self._kill_at:
            logger.info("pid %d outlived its grace period; sending SIGKILL", self._proc.pid)
            _signal_group(self._proc.pid, signal.SIGKILL)
            self._killed = True

    def _abandon_pipes(self) -> None:
        """Kill the descendants holding the pipes open, keep what is already buffered, stop."""
        logger.info("pid %d exited but its pipes stayed open; killing its group", self._proc.pid)
        _signal_group(self._proc.pid, signal.SIGKILL)
        for fd in list(self._pipes):
            stream = self._streams[fd]
            if stream is not None:
                self._read(fd, stream)
            if fd in self._pipes:
                self._close_pipe(fd)

    def _outcome(self, returncode: int) -> ProcessEnd:
        return ProcessEnd(
            pid=self._proc.pid,
            exit_code=returncode if returncode >= 0 else None,
            signal=-returncode if returncode < 0 else None,
            timed_out=self._timed_out,
            cancelled=self._cancelled,
            output_bytes=self._written,
            truncated=self._truncated,
        )

    def close(self) -> None:
        """Stop watching; release the pidfd and the pipes."""
        for fd in list(self._streams):
            self._stop_polling(fd)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        for fd in self._pipes:
            os.close(fd)
        self._pipes.clear()
        if self._proc.returncode is None:  # only when leaving early through an exception
            _signal_group(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
