"""Run child processes to completion: many at once from one thread (`Supervisor`, which a
worker's spawner processes run), or one (`run_process`).

One thread watches every child through one poll set. A thread per child measures worse:
each child's pipes and exit wake its own thread, and dozens of threads take turns at the GIL.
Plain threads and poll(), not asyncio: spawning from asyncio or uvloop measures slower.

The child gets its own session (and so its own process group): a timeout or cancel signals the
whole group, and whatever is left of the group is killed once the child exits, so no descendant
outlives its job unless it deliberately moved to another session. A child with a uid of its
own (a `JobUser` with a sweeper) leaves nothing at all: every process of that uid is killed
once it has ended (`sweep`).
"""

from __future__ import annotations

import logging
import math
import select
import time
from collections.abc import Callable
from typing import Any

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import rundir
from jobyard.worker.child import Child
from jobyard.worker.spawning import (
    OutputCallback,
    ProcessSpec,
    StartCallback,
    TooLateToStart,
    spawn,
    spawn_failure,
    sweep,
)

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_SECONDS = 0.2


def run_process(
    spec: ProcessSpec,
    *,
    on_start: StartCallback,
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
        on_start: StartCallback,
        on_output: OutputCallback,
        should_cancel: Callable[[], bool],
        on_end: EndCallback,
    ) -> Child | None:
        """Spawn a child; `on_end` is called once, with its outcome or a callback's error.
        A program that cannot be started ends at once, here, and gives None: no child; so
        does one asked for past its `start_by` (with `TooLateToStart`)."""
        if spec.start_by is not None and (late := time.time() - spec.start_by) > 0:
            on_end(None, TooLateToStart(f"{late:.3f} s past its start-by"))
            return None
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
            proc = spawn(spec, inherits_nothing=self._inherits_nothing)
        except (OSError, ValueError) as exc:  # ValueError: an argv or env Popen cannot pass on
            rundir.remove(spec)
            try:
                outcome = spawn_failure(spec, exc, on_output)
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
            on_start(proc.pid, proc.at)
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
