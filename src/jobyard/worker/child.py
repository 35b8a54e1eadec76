"""One running child as its supervisor sees it: its pipes and output budget, its timeout and
cancel (SIGTERM to the group, SIGKILL after the grace), its exit, and how it ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker.spawning import OutputCallback, ProcessSpec, Spawned, Stream

if TYPE_CHECKING:
    from jobyard.worker.supervisor import Supervisor

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
# Once the child has exited its output is at most one pipe buffer away, so a pipe still open
# after this long is held by a descendant and will not reach EOF on its own.
EXIT_DRAIN_SECONDS = 1.0
# Without a pidfd, an exit that happens after both pipes closed is found by polling; start fast
# (most children exit right after closing their pipes) and back off to the poll interval.
FIRST_EXIT_POLL_SECONDS = 0.001


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
            spawned=self._proc.at,
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
