"""The engine's side of the spawner process (`jobyard.worker.spawner`): `RemoteSupervisor`
runs children there, with the interface of `supervisor.Supervisor`, so the engine thread
only sends a command per job and reads back a few reports.

If a spawner dies, every child it ran ends with an error (their process groups are killed,
as nobody watches them any more) and the next start brings up a new spawner in its place.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobyard import logs
from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import channel
from jobyard.worker.spawning import (
    JobUser,
    OutputCallback,
    ProcessSpec,
    StartCallback,
    Stream,
    TooLateToStart,
)
from jobyard.worker.supervisor import DEFAULT_POLL_INTERVAL_SECONDS, EndCallback

logger = logging.getLogger(__name__)

SPAWNERS_MAX = 4
SLOTS_PER_SPAWNER = 8
CLOSE_SECONDS = 30.0  # for the spawner to kill and report what still runs, then exit
STREAMS = {stream.value: stream for stream in Stream}


# What a spawner takes from the worker's environment: what Python needs to start, never the
# server's settings or secrets (a job of the same user could otherwise read them in
# /proc/<spawner>/environ, were the spawner not also non-dumpable).
SPAWNER_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHOME")


def spawner_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in SPAWNER_ENV if name in os.environ}


class SpawnerGone(RuntimeError):
    """The spawner process ended while it ran children."""


class SpawnerError(RuntimeError):
    """What failed in the spawner while it ran a child (its text comes from there)."""


@dataclass
class _Remote:
    """A child a spawner runs for us, and what to tell about it."""

    spawner: _SpawnerProcess
    on_start: StartCallback
    on_output: OutputCallback
    should_cancel: Callable[[], bool]
    on_end: EndCallback
    pid: int = 0
    cancel_sent: bool = False
    error: Exception | None = None  # a callback of ours failed: the child is being killed


class _SpawnerProcess:
    """One spawner process and the two pipes to it."""

    def __init__(self) -> None:
        commands_read, commands_write = os.pipe2(os.O_CLOEXEC)
        reports_read, reports_write = os.pipe2(os.O_CLOEXEC)
        for fd in (commands_write, reports_write):
            channel.widen(fd)
        fds = (commands_read, reports_write)
        level = logging.getLevelName(logging.getLogger("jobyard").getEffectiveLevel())
        arguments = [*map(str, fds), str(level), logs.configured_format()]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobyard.worker.spawner", *arguments],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=spawner_environment(),
                cwd="/",  # it moves into each child's directory for its spawn
                start_new_session=True,  # a Ctrl-C at the terminal is the server's to handle
            )
        except BaseException:
            for fd in (commands_write, reports_read):
                os.close(fd)
            raise
        finally:
            os.close(commands_read)
            os.close(reports_write)
        os.set_blocking(reports_read, False)
        self.commands = channel.Outbox(commands_write)  # blocking: the spawner always reads
        self.reports = reports_read
        self.inbox = channel.Inbox()
        self.keys: set[int] = set()  # the children it runs

    def finish_commands(self) -> None:
        """Close the commands pipe: the spawner's sign to kill, report and exit."""
        if self.commands.fd >= 0:
            self.commands.discard()
            os.close(self.commands.fd)
            self.commands.fd = -1

    def close(self, timeout: float) -> int:
        """Close our ends and reap the process (killed after `timeout`); its exit status."""
        self.finish_commands()
        os.close(self.reports)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class RemoteSupervisor:
    """Children run by spawner processes: `start` them, then call `step` from the same
    thread until each one's `on_end` has been called; `wake()` (from any thread) ends a
    `step` early. Cancel requests are checked every `poll_interval` and passed on.

    A spawner is held up by each spawn until the child has exec'd, the time of a short job
    itself; with `spawners` > 1 the next spawn goes to the least busy one, so spawns overlap.

    A relative `cwd` of a child is taken from this process's directory.
    """

    def __init__(
        self,
        *,
        spawners: int = 1,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
    ) -> None:
        if spawners < 1:
            raise ValueError("at least one spawner is needed")
        self._size = spawners
        self._poll_interval = poll_interval
        self._poller = select.poll()
        self._spawners: dict[int, _SpawnerProcess] = {}  # by the fd of their reports
        self._remotes: dict[int, _Remote] = {}  # by key
        self._keys = 0
        self._next_cancel_check = 0.0
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_lock = threading.RLock()  # as in Supervisor: wakes may come from signals
        self._poller.register(self._wake_read, select.POLLIN)

    def __len__(self) -> int:
        return len(self._remotes)

    def open(self) -> None:
        """Start the spawners now rather than with the first children."""
        while len(self._spawners) < self._size:
            spawner = _SpawnerProcess()
            self._spawners[spawner.reports] = spawner
            self._poller.register(spawner.reports, select.POLLIN)

    def start(
        self,
        spec: ProcessSpec,
        *,
        on_start: StartCallback,
        on_output: OutputCallback,
        should_cancel: Callable[[], bool],
        on_end: EndCallback,
    ) -> None:
        """Have a spawner run a child (the command leaves at the next `step`)."""
        try:
            self.open()
        except OSError as error:
            on_end(None, error)
            return
        spawner = min(self._spawners.values(), key=lambda s: len(s.keys))
        self._keys += 1
        key = self._keys
        self._remotes[key] = _Remote(spawner, on_start, on_output, should_cancel, on_end)
        spawner.keys.add(key)
        argv, env = list(spec.argv), dict(spec.env)
        cwd = None if spec.cwd is None else os.path.abspath(spec.cwd)
        user = None if spec.user is None else _user_fields(spec.user)
        spawner.commands.put(
            (
                "start",
                key,
                argv,
                env,
                cwd,
                spec.timeout,
                spec.output_cap,
                spec.grace,
                user,
                spec.own_cwd,
                spec.sweep_first,
                spec.start_by,
            )
        )

    def step(self, timeout: float | None) -> None:
        """Send what is waiting; wait up to `timeout` seconds (None: until the next cancel
        check) for reports, and act on them."""
        self._send_cancels()
        for spawner in list(self._spawners.values()):
            self._send(spawner)
        wait = self._poll_interval if timeout is None else timeout
        if self._remotes:
            wait = min(wait, self._next_cancel_check - time.monotonic())
        for fd, _ in self._poller.poll(math.ceil(max(0.0, wait) * 1000)):
            if fd == self._wake_read:
                self._drain_wakes()
            elif (reporting := self._spawners.get(fd)) is not None:
                self._receive(reporting)

    def wake(self) -> None:
        """End the current (or next) `step` early; safe from any thread."""
        with self._wake_lock, contextlib.suppress(BlockingIOError):
            if self._wake_write >= 0:
                os.write(self._wake_write, b"w")

    def close(self) -> None:
        """Have the spawners kill and report whatever still runs, and let them exit."""
        for spawner in self._spawners.values():
            spawner.finish_commands()
        deadline = time.monotonic() + CLOSE_SECONDS
        while self._spawners and time.monotonic() < deadline:
            self.step(deadline - time.monotonic())
        for spawner in list(self._spawners.values()):
            self._lose(spawner, "did not finish in time")
        with self._wake_lock:
            for fd in (self._wake_read, self._wake_write):
                if fd >= 0:
                    os.close(fd)
            self._wake_read = self._wake_write = -1

    # Commands -----------------------------------------------------------------------------

    def _send(self, spawner: _SpawnerProcess) -> None:
        commands = spawner.commands
        if not commands:
            return
        if commands.fd < 0:  # closing: nothing more goes out
            commands.discard()
            return
        try:
            commands.flush()
        except BrokenPipeError:
            commands.discard()  # its end of the reports follows: see _receive

    def _send_cancels(self) -> None:
        now = time.monotonic()
        if now < self._next_cancel_check:
            return
        self._next_cancel_check = now + self._poll_interval
        for key, remote in self._remotes.items():
            if not remote.cancel_sent and self._asked_to_cancel(key, remote):
                remote.cancel_sent = True
                remote.spawner.commands.put(("cancel", key))

    def _asked_to_cancel(self, key: int, remote: _Remote) -> bool:
        try:
            return remote.should_cancel()
        except Exception as error:
            self._failed(key, remote, error)
            return False

    # Reports ------------------------------------------------------------------------------

    def _receive(self, spawner: _SpawnerProcess) -> None:
        messages = spawner.inbox.read_from(spawner.reports)
        if messages is None:
            self._lose(spawner, "ended")
            return
        for message in messages:
            self._report(message)

    def _report(self, message: channel.Message) -> None:
        kind, key = message[0], message[1]
        remote = self._remotes.get(key)
        if remote is None:
            return
        if kind == "ended":
            self._forget(key, remote)
            fields, text = message[2], message[3]
            error = remote.error or (SpawnerError(text) if text is not None else None)
            # `spawner.outcome_fields` sends them in the order ProcessEnd declares them.
            remote.on_end(None if error or fields is None else ProcessEnd(*fields), error)
        elif kind == "too late":
            self._forget(key, remote)
            remote.on_end(None, remote.error or TooLateToStart("its start-by had passed"))
        elif remote.error is not None:
            return  # being killed: nothing more is passed on
        elif kind == "output":
            self._guarded(key, remote, remote.on_output, STREAMS[message[2]], message[3])
        elif kind == "started":
            remote.pid = message[2]
            self._guarded(key, remote, remote.on_start, remote.pid, message[3])

    def _forget(self, key: int, remote: _Remote) -> None:
        del self._remotes[key]
        remote.spawner.keys.discard(key)

    def _guarded(
        self, key: int, remote: _Remote, callback: Callable[..., None], *args: object
    ) -> None:
        try:
            callback(*args)
        except Exception as error:
            self._failed(key, remote, error)

    def _failed(self, key: int, remote: _Remote, error: Exception) -> None:
        """A callback of ours failed: the child is killed, and ends with that error."""
        remote.error = error
        remote.spawner.commands.put(("kill", key))

    def _lose(self, spawner: _SpawnerProcess, how: str) -> None:
        """A spawner is gone: kill what it ran, end each of its children with an error."""
        del self._spawners[spawner.reports]
        self._poller.unregister(spawner.reports)
        status = spawner.close(timeout=5)
        keys, spawner.keys = spawner.keys, set()
        if keys:
            logger.error("a spawner process %s (status %s) with %d jobs", how, status, len(keys))
        error = SpawnerGone(f"the spawner process {how} (status {status})")
        for key in keys:
            remote = self._remotes.pop(key)
            if remote.pid:  # its group has nobody watching it now
                with contextlib.suppress(OSError):
                    os.killpg(remote.pid, signal.SIGKILL)
            remote.on_end(None, remote.error or error)

    def _drain_wakes(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass


def spawners_for(slots: int) -> int:
    """Spawner processes for a pool: a spawn holds its spawner until the child has exec'd,
    so a busy pool spreads spawns over more than one (a few at most: each is a process)."""
    return max(1, min(SPAWNERS_MAX, os.cpu_count() or 1, slots // SLOTS_PER_SPAWNER))


def _user_fields(user: JobUser) -> tuple[object, ...]:
    """A job's user as it crosses the pipe (`spawner` rebuilds it): its fields in their
    order, shallow (`dataclasses.astuple` deep-copies, a measurable share of a busy turn)."""
    return (user.name, user.uid, user.gid, user.groups, user.sweeper)
