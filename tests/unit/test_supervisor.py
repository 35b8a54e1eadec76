"""`run_process` against real child processes: output, exit status, limits and cleanup.

Liveness is read from /proc so that a killed descendant left as a zombie (pid 1 in a container
may never reap it) counts as gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobyard.domain.run_end import ProcessEnd
from jobyard.worker import spawning
from jobyard.worker.spawning import EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, ProcessSpec, Stream
from jobyard.worker.supervisor import run_process

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.timeout(30),
]

BASE_ENV = {"PATH": os.environ.get("PATH", os.defpath)}


@pytest.fixture(autouse=True, params=["popen", "posix_spawn"])
def spawn_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test, with both ways a child is spawned: `posix_spawn` is taken where the
    caller vouches that nothing it holds is inheritable (a spawner) and the child runs in
    the caller's directory; `Popen` otherwise."""
    monkeypatch.setattr(Run, "inherits_nothing", request.param == "posix_spawn")
    # A posix_spawn moves this process into the child's directory (as a spawner does): the
    # test's own directory is restored after it, for the tests that follow in this process.
    monkeypatch.chdir(Path.cwd())
    way: str = request.param
    return way


MIB = 1024 * 1024
TRUE = shutil.which("true") or "/bin/true"


def marker(cap: int) -> bytes:
    return f"\n[jobyard: output truncated after {cap} bytes]\n".encode()


class Collector:
    """Records what `on_output` receives; with `keep=False` it only counts bytes."""

    def __init__(self, *, keep: bool = True, cap: int | None = None) -> None:
        self.keep = keep
        self.marker = None if cap is None else marker(cap)
        self.chunks: list[tuple[Stream, bytes]] = []
        self.counts = {Stream.STDOUT: 0, Stream.STDERR: 0}
        self.markers: list[Stream] = []

    def __call__(self, stream: Stream, data: bytes) -> None:
        if data == self.marker:
            self.markers.append(stream)
            return
        self.counts[stream] += len(data)
        if self.keep:
            self.chunks.append((stream, data))

    def text(self, stream: Stream) -> bytes:
        return b"".join(data for s, data in self.chunks if s is stream)


class Run:
    """One call of `run_process` with everything it reported."""

    inherits_nothing = False

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        should_cancel: Callable[[], bool] = lambda: False,
        poll_interval: float = 0.05,
        collector: Collector | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        output_cap: int = 10 * MIB,
        grace: float = 5.0,
    ) -> None:
        self.output = collector or Collector()
        self.started: list[tuple[int, float]] = []
        spec = ProcessSpec(
            argv=argv,
            env=BASE_ENV if env is None else env,
            cwd=cwd,
            timeout=timeout,
            output_cap=output_cap,
            grace=grace,
        )
        began = time.monotonic()
        self.outcome: ProcessEnd = run_process(
            spec,
            on_start=lambda pid, spawned: self.started.append((pid, spawned)),
            on_output=self.output,
            should_cancel=should_cancel,
            poll_interval=poll_interval,
            inherits_nothing=self.inherits_nothing,
        )
        self.elapsed = time.monotonic() - began

    @property
    def stdout(self) -> bytes:
        return self.output.text(Stream.STDOUT)

    @property
    def stderr(self) -> bytes:
        return self.output.text(Stream.STDERR)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def script(tmp_path: Path, body: str, name: str = "job.sh") -> list[str]:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return [str(path)]


def alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat_line.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            members.append(int(entry))
    return members


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Whether `check` holds within `timeout`: SIGKILL is delivered asynchronously."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# --- output and exit status -------------------------------------------------------------------


def test_output_is_captured_and_child_reaped() -> None:
    run = Run(py("print('hello')"))
    assert run.stdout == b"hello\n"
    assert run.stderr == b""
    assert run.outcome.exit_code == 0
    assert run.outcome.signal is None
    assert run.outcome.output_bytes == len(b"hello\n")
    assert not run.outcome.truncated
    assert not run.outcome.timed_out
    assert not run.outcome.cancelled
    assert reaped(run.outcome.pid)


def test_stdout_and_stderr_stay_separate() -> None:
    run = Run(py("import sys; print('out'); print('err', file=sys.stderr)"))
    assert run.stdout == b"out\n"
    assert run.stderr == b"err\n"
    assert run.outcome.output_bytes == 8


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_is_reported(code: int) -> None:
    run = Run(py(f"raise SystemExit({code})"))
    assert run.outcome.exit_code == code
    assert run.outcome.signal is None


def test_death_by_signal_is_reported() -> None:
    run = Run(py("import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"))
    assert run.outcome.exit_code is None
    assert run.outcome.signal == signal.SIGUSR1


def test_on_start_receives_the_real_pid_and_when_it_came_to_exist() -> None:
    before = time.time()
    run = Run(py("import os; print(os.getpid())"))
    [(pid, spawned)] = run.started
    assert pid == run.outcome.pid == int(run.stdout)
    assert before <= spawned == run.outcome.spawned <= time.time()


def test_a_child_past_its_start_by_is_not_spawned(tmp_path: Path) -> None:
    marker_file = tmp_path / "ran"
    spec = ProcessSpec(["touch", str(marker_file)], BASE_ENV, start_by=time.time() - 0.001)
    started: list[int] = []
    with pytest.raises(spawning.TooLateToStart):
        run_process(
            spec,
            on_start=lambda pid, _: started.append(pid),
            on_output=Collector(),
            should_cancel=lambda: False,
            inherits_nothing=Run.inherits_nothing,
        )
    assert started == []
    assert not marker_file.exists()


# --- spawn failures -----------------------------------------------------------------------------


def test_missing_executable_is_exit_127(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    run = Run([missing])
    assert run.outcome.exit_code == EXIT_NOT_FOUND == 127
    assert run.outcome.pid == 0
    assert run.started == []
    assert run.stdout == b""
    assert run.stderr.startswith(f"jobyard: cannot execute {missing}: ".encode())
    assert run.stderr.endswith(b"\n")
    assert run.stderr.count(b"\n") == 1


def test_non_executable_file_is_exit_126(tmp_path: Path) -> None:
    path = tmp_path / "not-executable"
    path.write_text("#!/bin/sh\necho nope\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    run = Run([str(path)])
    assert run.outcome.exit_code == EXIT_CANNOT_EXECUTE == 126
    assert run.outcome.pid == 0
    assert run.stderr.startswith(f"jobyard: cannot execute {path}: ".encode())


def test_a_program_found_on_path_is_looked_up_again_once_moved_or_shadowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a program lies is remembered for a while (a spawner's look-ups cost a system
    call per PATH directory): a moved program is found at its new place at once, and one
    newly earlier on PATH once that while is over."""
    monkeypatch.setattr(spawning, "PROGRAM_LOOKUP_SECONDS", 0.2)
    first, second = tmp_path / "first", tmp_path / "second"
    env = {"PATH": f"{first}{os.pathsep}{second}{os.pathsep}{BASE_ENV['PATH']}"}
    for folder in (first, second):
        folder.mkdir()
    script(second, f"echo {second.name}\n", name="jobyard-where")
    assert Run(["jobyard-where"], env=env).stdout == b"second\n"
    script(first, f"echo {first.name}\n", name="jobyard-where")
    time.sleep(0.3)
    assert Run(["jobyard-where"], env=env).stdout == b"first\n"
    (first / "jobyard-where").unlink()
    assert Run(["jobyard-where"], env=env).stdout == b"second\n"


def test_empty_argv_is_rejected() -> None:
    with pytest.raises(ValueError, match="argv"):
        ProcessSpec(argv=[], env={})


# --- environment and working directory ----------------------------------------------------------


def test_child_gets_exactly_the_given_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBYARD_PARENT_ONLY", "leaked")
    env_program = shutil.which("env")
    assert env_program is not None
    run = Run([env_program], env={"JOBYARD_PROBE": "42 and spaces"})
    assert run.stdout == b"JOBYARD_PROBE=42 and spaces\n"
    assert run.outcome.exit_code == 0


def test_child_runs_in_the_given_directory(tmp_path: Path) -> None:
    run = Run(py("import os; print(os.getcwd())"), cwd=str(tmp_path))
    assert Path(run.stdout.decode().strip()).resolve() == tmp_path.resolve()


# --- output cap ---------------------------------------------------------------------------------


def test_huge_output_is_capped_counted_and_dropped() -> None:
    cap = MIB
    collector = Collector(keep=False, cap=cap)
    code = (
        "import sys\n"
        "block = b'x' * (1 << 20)\n"
        "for _ in range(50):\n"
        "    sys.stdout.buffer.write(block)\n"
    )
    run = Run(py(code), collector=collector, output_cap=cap)
    assert run.outcome.exit_code == 0
    assert run.outcome.truncated
    assert run.outcome.output_bytes == 50 * MIB
    assert collector.counts == {Stream.STDOUT: cap, Stream.STDERR: 0}
    assert collector.markers == [Stream.STDOUT]
    assert run.elapsed < 10


def test_cap_counts_both_streams_and_marks_the_stream_that_crossed_it() -> None:
    code = "import sys, os\nos.write(1, b'o' * 600)\nos.write(2, b'e' * 600)\n"
    collector = Collector(cap=1000)
    run = Run(py(code), collector=collector, output_cap=1000)
    assert run.outcome.truncated
    assert run.outcome.output_bytes == 1200
    assert sum(collector.counts.values()) == 1000
    assert len(collector.markers) == 1
    assert collector.chunks[-1][0] is collector.markers[0]


def test_output_exactly_at_the_cap_is_not_truncated() -> None:
    collector = Collector(cap=100)
    run = Run(py("import os; os.write(1, b'a' * 100)"), collector=collector, output_cap=100)
    assert not run.outcome.truncated
    assert collector.markers == []
    assert run.stdout == b"a" * 100


# --- timeout and cancel -------------------------------------------------------------------------


def test_timeout_terminates_the_whole_group(tmp_path: Path) -> None:
    run = Run(script(tmp_path, "sleep 30 &\necho $!\nsleep 30\n"), timeout=0.5)
    assert run.elapsed < 5
    assert run.outcome.timed_out
    assert not run.outcome.cancelled
    assert run.outcome.signal == signal.SIGTERM
    assert eventually(lambda: not group_members(run.outcome.pid))
    assert eventually(lambda: not alive(int(run.stdout)))


def test_cancel_sends_sigterm_once_asked() -> None:
    calls = []

    def should_cancel() -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 3

    run = Run(py("import time; time.sleep(30)"), should_cancel=should_cancel)
    assert run.outcome.cancelled
    assert not run.outcome.timed_out
    assert run.outcome.signal == signal.SIGTERM
    assert len(calls) == 3
    assert run.elapsed < 5


def test_cancel_escalates_to_sigkill_after_grace() -> None:
    collector = Collector()
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )

    def ready() -> bool:
        return b"ready" in collector.text(Stream.STDOUT)

    run = Run(py(code), collector=collector, should_cancel=ready, grace=0.5)
    assert run.outcome.cancelled
    assert run.outcome.signal == signal.SIGKILL
    assert 0.5 <= run.elapsed < 5
    assert eventually(lambda: not group_members(run.outcome.pid))


# --- descendants --------------------------------------------------------------------------------


def test_grandchild_holding_the_pipes_does_not_hang_the_call(tmp_path: Path) -> None:
    run = Run(script(tmp_path, "sleep 60 &\necho $!\n"))
    grandchild = int(run.stdout)
    assert run.outcome.exit_code == 0
    assert run.elapsed < 5
    assert eventually(lambda: not alive(grandchild))


def test_detached_grandchild_is_killed_when_the_child_exits(tmp_path: Path) -> None:
    run = Run(script(tmp_path, "sleep 60 >/dev/null 2>&1 &\necho $!\n"), poll_interval=5)
    assert run.outcome.exit_code == 0
    assert run.elapsed < 1  # the pipes reached EOF; no drain window was needed
    assert eventually(lambda: not alive(int(run.stdout)))


def test_child_that_closes_its_pipes_is_still_awaited(tmp_path: Path) -> None:
    run = Run(script(tmp_path, "exec >&- 2>&-\nsleep 0.3\nexit 4\n"), poll_interval=5)
    assert run.outcome.exit_code == 4
    assert 0.3 <= run.elapsed < 2


def test_failing_callback_propagates_and_leaves_no_process() -> None:
    pids: list[int] = []

    def explode(stream: Stream, data: bytes) -> None:
        raise RuntimeError("collector broke")

    spec = ProcessSpec(argv=py("print('x', flush=True); import time; time.sleep(30)"), env=BASE_ENV)
    with pytest.raises(RuntimeError, match="collector broke"):
        run_process(
            spec,
            on_start=lambda pid, spawned: pids.append(pid),
            on_output=explode,
            should_cancel=lambda: False,
        )
    assert reaped(pids[0])
    assert not alive(pids[0])


# --- speed, resources, threads ------------------------------------------------------------------


def test_fast_path_does_not_wait_for_a_poll() -> None:
    run = Run([TRUE], poll_interval=5)
    assert run.outcome.exit_code == 0
    assert run.elapsed < 1


def test_no_descriptor_is_leaked() -> None:
    Run([TRUE])  # let lazily opened descriptors settle
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        Run([TRUE])
        Run(py("import os; os.write(1, b'z' * 5000)"), output_cap=10)
    assert len(os.listdir("/proc/self/fd")) == before


def test_concurrent_callers_all_succeed() -> None:
    results: list[ProcessEnd] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(20):
                outcome = Run([TRUE]).outcome
                with lock:
                    results.append(outcome)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 160
    assert all(outcome.exit_code == 0 for outcome in results)
    assert all(reaped(outcome.pid) for outcome in results)
