"""The spawner: a small process of each worker that starts, watches and reaps the processes
of its jobs. The worker's engine tells it what to run over one pipe; it reports back over
another (`channel`).

Why a process of its own: in the worker, each spawn held up the engine thread (vfork waits
for the child's exec, and the GIL is then won back from the server's other threads), and
watching the children competed for the GIL with the database turns. Here both run beside
the engine, on the other core. It imports only the standard library, `supervisor`, `child` and
`spawning`, so it starts fast and stays small. `jobyard.worker.remote` is the engine's side.

Commands: ("start", key, argv, env, cwd, timeout, output_cap, grace, user, own_cwd,
sweep_first, start_by) (user: the fields of a `JobUser`, or None), ("cancel", key),
("kill", key). Reports: ("started", key, pid, spawned), ("output", key, stream, data),
("ended", key, outcome fields or None, error text or None), ("too late", key) (a start
past its `start_by`: nothing was spawned; the spawner, unlike its worker's engine, is not
held up by whatever made the command late). When the commands pipe closes,
the engine is gone or done: whatever still runs is killed and reported, then the spawner
exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import select
import sys
from collections import deque

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import channel, hardening
from jobyard.worker.child import Child
from jobyard.worker.spawning import JobUser, ProcessSpec, Stream, TooLateToStart
from jobyard.worker.supervisor import DEFAULT_POLL_INTERVAL_SECONDS, Supervisor

logger = logging.getLogger("jobyard.worker.spawner")

# While commands queue up, reports go out after every few spawns rather than after each:
# a write per spawn would wake the engine each time. (An end waits for at most this many spawns,
# about a millisecond each; with nothing queued, reports go out at once.)
SPAWNS_PER_REPORT = 4


def outcome_fields(outcome: ProcessEnd) -> tuple[object, ...]:
    """A process's end as it crosses the pipe: its fields in their order (shallow: they are
    plain values, and `dataclasses.astuple` copies deeply)."""
    return tuple(getattr(outcome, name) for name in _OUTCOME_FIELDS)


_OUTCOME_FIELDS = tuple(field.name for field in dataclasses.fields(ProcessEnd))


class StoppedByEngine(Exception):
    """The engine asked for a child to be killed at once (one of its callbacks failed)."""


class Spawner:
    """Obeys the commands on one pipe and reports on another until the commands end."""

    def __init__(
        self,
        commands: int,
        reports: int,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
    ) -> None:
        for fd in (commands, reports):
            os.set_blocking(fd, False)
            # Passed on to this process, so inheritable: no job's process may have them.
            os.set_inheritable(fd, False)
        self._commands = commands
        self._inbox = channel.Inbox()
        self._reports = channel.Outbox(reports)
        # Every other descriptor of this process is Python's own, and so not inheritable.
        self._supervisor = Supervisor(poll_interval=poll_interval, inherits_nothing=True)
        self._supervisor.watch_fd(commands, select.POLLIN, self._on_commands)
        self._queue: deque[channel.Message] = deque()  # commands not yet obeyed
        self._children: dict[int, Child] = {}  # by the engine's key
        self._cancelled: set[int] = set()
        self._open = True
        self._waiting_to_report = False

    def run(self) -> None:
        try:
            spawned = 0
            while self._open or len(self._supervisor) or self._queue:
                if self._queue:
                    self._obey(self._queue.popleft())
                    # Between spawns, notice the ends: the engine records them meanwhile,
                    # instead of waiting for a whole batch to be started.
                    self._supervisor.step(0)
                    spawned += 1
                else:
                    self._supervisor.step(None)
                if not self._queue or spawned % SPAWNS_PER_REPORT == 0:
                    self._flush()
        finally:
            self._supervisor.close()
        os.set_blocking(self._reports.fd, True)  # the last reports: worth a wait
        with contextlib.suppress(BrokenPipeError):
            self._reports.flush()

    # Commands -----------------------------------------------------------------------------

    def _on_commands(self, _events: int) -> None:
        messages = self._inbox.read_from(self._commands)
        if messages is None:
            self._close()
        else:
            self._queue.extend(messages)

    def _obey(self, message: channel.Message) -> None:
        kind, key = message[0], message[1]
        if kind == "start":
            self._start(key, *message[2:])
        elif kind == "cancel":
            self._cancelled.add(key)
            if (child := self._children.get(key)) is not None:
                child.check_soon()
        elif kind == "kill":
            if (child := self._children.get(key)) is not None:
                self._supervisor.abort(child, StoppedByEngine("stopped by the worker"))
        else:
            logger.error("unknown command %r", kind)

    def _start(
        self,
        key: int,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        timeout: float | None,
        output_cap: int,
        grace: float,
        user: tuple[str, int, int, list[int], int | None] | None,
        own_cwd: bool,
        sweep_first: bool,
        start_by: float | None,
    ) -> None:
        try:
            job_user = None if user is None else JobUser(*user[:3], tuple(user[3]), user[4])
            spec = ProcessSpec(
                argv, env, cwd, timeout, output_cap, grace, job_user, own_cwd, sweep_first, start_by
            )
        except ValueError as error:
            self._ended(key, None, error)
            return
        child = self._supervisor.start(
            spec,
            on_start=functools.partial(self._started, key),
            on_output=functools.partial(self._output, key),
            should_cancel=functools.partial(self._cancelled.__contains__, key),
            on_end=functools.partial(self._ended, key),
        )
        if child is not None:
            self._children[key] = child

    def _close(self) -> None:
        """The engine has closed the commands: stop everything, report it, finish."""
        self._open = False
        self._supervisor.unwatch_fd(self._commands)
        for message in self._queue:
            if message[0] == "start":
                self._ended(message[1], None, StoppedByEngine("never started: the worker closed"))
        self._queue.clear()
        self._supervisor.close()
        self._flush()

    # Reports ------------------------------------------------------------------------------

    def _started(self, key: int, pid: int, spawned: float) -> None:
        self._reports.put(("started", key, pid, spawned))

    def _output(self, key: int, stream: Stream, data: bytes) -> None:
        self._reports.put(("output", key, stream.value, data))

    def _ended(self, key: int, outcome: ProcessEnd | None, error: Exception | None) -> None:
        self._children.pop(key, None)
        self._cancelled.discard(key)
        if isinstance(error, TooLateToStart):
            self._reports.put(("too late", key))
            return
        fields = None if outcome is None else outcome_fields(outcome)
        text = None if error is None else f"{type(error).__name__}: {error}"
        self._reports.put(("ended", key, fields, text))

    def _flush(self) -> None:
        """Write the reports the pipe takes; wait for room for the rest without blocking, as
        the children must be watched meanwhile."""
        try:
            done = self._reports.flush()
        except BrokenPipeError:  # the engine is gone: nobody is left to run jobs for
            self._reports.discard()
            if self._open:
                self._close()
            return
        if done and self._waiting_to_report:
            self._supervisor.unwatch_fd(self._reports.fd)
        elif not done and not self._waiting_to_report:
            self._supervisor.watch_fd(self._reports.fd, select.POLLOUT, lambda _: self._flush())
        self._waiting_to_report = not done


def main(argv: list[str]) -> None:
    """`python -m jobyard.worker.spawner COMMANDS_FD REPORTS_FD LOG_LEVEL LOG_FORMAT`"""
    commands, reports, level, log_format = int(argv[0]), int(argv[1]), argv[2], argv[3]
    hardening.harden_process()  # the jobs inherit its umask: what they write is theirs
    if log_format == "json":  # rare lines (a failed spawn) in the server's format
        from jobyard import logs  # noqa: PLC0415 - only then: the spawner starts light

        logs.configure(log_format, level)
    else:
        logging.basicConfig(
            level=level, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
        )
    Spawner(commands, reports).run()


if __name__ == "__main__":
    main(sys.argv[1:])
