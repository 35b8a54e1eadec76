"""`RemoteSupervisor` against real spawner processes and real children: what `Supervisor`
promises, across the pipes, and what happens when a spawner or its engine goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker.remote import RemoteSupervisor, SpawnerGone
from jobyard.worker.spawning import (
    EXIT_CANNOT_EXECUTE,
    EXIT_NOT_FOUND,
    ProcessSpec,
    Stream,
    TooLateToStart,
)
from tests.unit.test_supervisor import alive, py

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.timeout(60),
]

ENV = {"PATH": os.environ.get("PATH", os.defpath)}


@dataclass
class Child:
    """What the callbacks of one child received."""

    pids: list[int] = field(default_factory=list)
    output: list[tuple[Stream, bytes]] = field(default_factory=list)
    ends: list[tuple[ProcessEnd | None, Exception | None]] = field(default_factory=list)
    cancel: bool = False

    def text(self, stream: Stream) -> bytes:
        return b"".join(data for s, data in self.output if s is stream)

    @property
    def outcome(self) -> ProcessEnd:
        (outcome, error), *_ = self.ends
        assert error is None, error
        assert outcome is not None
        return outcome


@pytest.fixture
def remote() -> Iterator[RemoteSupervisor]:
    supervisor = RemoteSupervisor(poll_interval=0.05)
    yield supervisor
    supervisor.close()


def start(
    supervisor: RemoteSupervisor,
    argv: list[str],
    *,
    on_output: Callable[[Stream, bytes], None] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    **limits: float,
) -> Child:
    child = Child()
    supervisor.start(
        ProcessSpec(argv=argv, env=env or ENV, cwd=cwd, **limits),  # type: ignore[arg-type]
        on_start=lambda pid, spawned: child.pids.append(pid),
        on_output=on_output or (lambda stream, data: child.output.append((stream, data))),
        should_cancel=lambda: child.cancel,
        on_end=lambda outcome, error: child.ends.append((outcome, error)),
    )
    return child


def step_until(supervisor: RemoteSupervisor, done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        supervisor.step(0.05)


def test_children_run_with_their_output_and_exit_status(remote: RemoteSupervisor) -> None:
    children = [
        start(remote, py(f"import sys; print('out {i}'); sys.stderr.write('err'); exit({i})"))
        for i in range(5)
    ]
    step_until(remote, lambda: all(c.ends for c in children))
    for i, child in enumerate(children):
        assert child.outcome.exit_code == i
        assert child.outcome.pid == child.pids[0] > 0
        assert child.text(Stream.STDOUT) == f"out {i}\n".encode()
        assert child.text(Stream.STDERR) == b"err"
    assert len(remote) == 0


def test_a_program_that_cannot_start_ends_like_a_shell_says(remote: RemoteSupervisor) -> None:
    child = start(remote, ["no-such-program-jobyard"])
    step_until(remote, lambda: bool(child.ends))
    assert child.outcome.exit_code == EXIT_NOT_FOUND
    assert b"cannot execute no-such-program-jobyard" in child.text(Stream.STDERR)
    assert child.pids == []


def test_a_start_that_reaches_its_spawner_past_its_start_by_spawns_nothing(
    remote: RemoteSupervisor, tmp_path: Path
) -> None:
    """The engine queues a start; were it frozen before the command left (SIGSTOP), the job's
    lease may have lapsed by the time it does. The spawner, which the frozen engine does not
    hold up, refuses it: nothing runs, and the end says why. A start in time runs."""
    late_marker, timely_marker = tmp_path / "late", tmp_path / "timely"
    late = start(remote, ["touch", str(late_marker)], start_by=time.time() + 0.2)
    time.sleep(0.3)  # the engine, frozen with the command queued
    timely = start(remote, ["touch", str(timely_marker)], start_by=time.time() + 30)
    step_until(remote, lambda: bool(late.ends and timely.ends))
    [(outcome, error)] = late.ends
    assert outcome is None
    assert isinstance(error, TooLateToStart)
    assert late.pids == []
    assert timely.outcome.exit_code == 0
    assert timely_marker.exists()
    assert not late_marker.exists()
    assert len(remote) == 0


# What a child of a spawner starts with: its own PATH, directory, stdio, session and signals.


def test_a_bare_program_name_is_looked_up_on_the_childs_path(
    remote: RemoteSupervisor, tmp_path: Path
) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "jobyard-probe").write_text("#!/bin/sh\necho found\n")
    (folder / "jobyard-probe").chmod(0o755)
    (folder / "jobyard-unrunnable").write_text("#!/bin/sh\necho no\n")
    path = {"PATH": f"{folder}{os.pathsep}{ENV['PATH']}"}
    found = start(remote, ["jobyard-probe"], env=path)
    not_ours = start(remote, ["jobyard-probe"])  # our PATH does not have it
    denied = start(remote, ["jobyard-unrunnable"], env=path)
    step_until(remote, lambda: bool(found.ends and not_ours.ends and denied.ends))
    assert (found.outcome.exit_code, found.text(Stream.STDOUT)) == (0, b"found\n")
    assert not_ours.outcome.exit_code == EXIT_NOT_FOUND
    assert denied.outcome.exit_code == EXIT_CANNOT_EXECUTE
    assert b"cannot execute jobyard-unrunnable: Permission denied" in denied.text(Stream.STDERR)


def test_children_run_in_their_directory_and_a_relative_one_is_the_workers(
    remote: RemoteSupervisor, tmp_path: Path
) -> None:
    where = py("import os; print(os.getcwd())")
    elsewhere = start(remote, where, cwd=str(tmp_path))
    step_until(remote, lambda: bool(elsewhere.ends))
    here = start(remote, where, cwd=".")  # after the spawner moved for the one before
    missing = start(remote, where, cwd=str(tmp_path / "gone"))
    step_until(remote, lambda: bool(here.ends and missing.ends))
    assert Path(elsewhere.text(Stream.STDOUT).decode().strip()) == tmp_path.resolve()
    assert Path(here.text(Stream.STDOUT).decode().strip()) == Path.cwd().resolve()
    assert missing.outcome.exit_code == EXIT_NOT_FOUND
    assert str(tmp_path / "gone").encode() in missing.text(Stream.STDERR)


def test_a_child_gets_only_its_stdio_a_session_and_default_signals(
    remote: RemoteSupervisor,
) -> None:
    probe = start(
        remote,
        py(
            "import os\n"
            "print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))\n"
            "print(os.readlink('/proc/self/fd/0'), os.getsid(0) == os.getpid())\n"
        ),
    )
    # grep's own status shows which signals it was started with ignored.
    ignored = start(remote, ["grep", "SigIgn", "/proc/self/status"])
    step_until(remote, lambda: bool(probe.ends and ignored.ends))
    fds, stdin_and_session = probe.text(Stream.STDOUT).decode().splitlines()
    assert fds == "[0, 1, 2, 3]"  # 3: the listing's own
    assert stdin_and_session == "/dev/null True"
    mask = int(ignored.text(Stream.STDOUT).split()[1], 16)
    assert mask & (1 << (signal.SIGPIPE - 1)) == 0
    assert mask & (1 << (signal.SIGXFSZ - 1)) == 0


def test_cancel_and_timeout_stop_the_child(remote: RemoteSupervisor) -> None:
    cancelled = start(remote, ["sleep", "30"], grace=1)
    timed_out = start(remote, ["sleep", "30"], timeout=0.2, grace=1)
    step_until(remote, lambda: bool(cancelled.pids))
    cancelled.cancel = True
    step_until(remote, lambda: bool(cancelled.ends and timed_out.ends))
    assert cancelled.outcome.cancelled
    assert cancelled.outcome.signal == signal.SIGTERM
    assert timed_out.outcome.timed_out
    assert not timed_out.outcome.cancelled


def test_a_failing_callback_kills_the_child_and_ends_it_with_the_error(
    remote: RemoteSupervisor,
) -> None:
    def refuse(stream: Stream, data: bytes) -> None:
        raise ValueError("no room for output")

    child = start(
        remote, py("import time; print('hi', flush=True); time.sleep(30)"), on_output=refuse
    )
    step_until(remote, lambda: bool(child.ends))
    outcome, error = child.ends[0]
    assert outcome is None
    assert isinstance(error, ValueError)
    assert not alive(child.pids[0])


def test_a_lost_spawner_ends_its_children_and_the_next_start_gets_a_new_one(
    remote: RemoteSupervisor,
) -> None:
    child = start(remote, ["sleep", "30"])
    step_until(remote, lambda: bool(child.pids))
    spawner_pid = parent_of(child.pids[0])
    os.kill(spawner_pid, signal.SIGKILL)
    step_until(remote, lambda: bool(child.ends))
    outcome, error = child.ends[0]
    assert outcome is None
    assert isinstance(error, SpawnerGone)
    step_until(remote, lambda: not alive(child.pids[0]), seconds=5)
    again = start(remote, ["true"])
    step_until(remote, lambda: bool(again.ends))
    assert again.outcome.exit_code == 0


def test_close_kills_what_still_runs_and_reports_it() -> None:
    supervisor = RemoteSupervisor(poll_interval=0.05)
    child = start(supervisor, ["sleep", "30"])
    step_until(supervisor, lambda: bool(child.pids))
    supervisor.close()
    assert child.outcome.signal == signal.SIGKILL
    assert not alive(child.pids[0])


def test_spawns_are_spread_over_the_spawners() -> None:
    supervisor = RemoteSupervisor(spawners=2, poll_interval=0.05)
    try:
        children = [start(supervisor, ["sleep", "30"]) for _ in range(4)]
        step_until(supervisor, lambda: all(c.pids for c in children))
        parents = {parent_of(c.pids[0]) for c in children}
        assert len(parents) == 2
    finally:
        supervisor.close()


def test_the_spawner_kills_its_children_when_the_engine_dies() -> None:
    """No close(): the engine's process just ends, and with it the commands pipe."""
    engine = textwrap.dedent(
        """
        import os, sys
        from jobyard.worker.remote import RemoteSupervisor
        from jobyard.worker.spawning import ProcessSpec
        supervisor = RemoteSupervisor()
        pids = []
        supervisor.start(ProcessSpec(argv=["sleep", "30"], env={"PATH": os.defpath}),
            on_start=lambda pid, spawned: pids.append(pid), on_output=lambda s, d: None,
            should_cancel=lambda: False, on_end=lambda o, e: None)
        while not pids:
            supervisor.step(0.05)
        print(pids[0], flush=True)
        os._exit(0)
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", engine], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(finished.stdout)
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, "the job outlived its engine"
        time.sleep(0.05)


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])
