"""Stopping what a dead worker's (or a dead spawner's) jobs left running on this host, before
their runs are retried: a job whose worker died lives on under init, and a retry would run it
twice. What can be stopped depends on what is known of it:

- With job uids (`JOBYARD_JOB_UIDS`, the default as root), a uid of the range that no live
  worker holds runs no live worker's job: whatever runs as it is left over, and is killed
  with that uid's sweep (`spawning.sweep`), which nothing it runs can escape by forking.
- A run's recorded process (its pid is recorded a moment after it starts) is killed with its
  process group if it is still that process: a session leader (a job starts a session of its
  own), started when its run started, running as a job's uid, and not started with another
  run's token (`JOBYARD_TOKEN`, checked against the run's stored hash). A pid reused since is
  left alone, and so is another deployment's job on the same host, whose run ids are its own.
- A run whose pid was never recorded (its worker died within a moment of starting it) is found
  by the run id every job's process starts with in its environment (`JOBYARD_RUN_ID`), and
  stopped the same way, under the same checks.

Across hosts nothing can be stopped: see docs/fleet.md on at-least-once and `rerun_lost`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from jobyard.domain.models import RunProcess
from jobyard.worker.spawning import JobUser, sweep

logger = logging.getLogger(__name__)

# How far a process's start may be from its run's: the run starts in the database a moment
# before its process does (a turn of the engine, a spawner's queue), never much later.
STARTED_BEFORE_RUN_SECONDS = 2.0
STARTED_AFTER_RUN_SECONDS = 10.0
GONE_WAIT_SECONDS = 2.0
# Every job's process starts with both (see `starting`).
RUN_ID_VARIABLE = b"JOBYARD_RUN_ID"
TOKEN_VARIABLE = b"JOBYARD_TOKEN"


def sweep_uids(uids: Sequence[int], *, sweeper: int) -> None:
    """Kill every process running as each of `uids`. A sweep switches the ids of the whole
    process, so a child of its own does it: a worker has threads."""
    if not uids:
        return
    child = os.fork()
    if child == 0:  # only async-signal-safe work until _exit
        status = 0
        try:
            for uid in uids:
                sweep(JobUser("", uid, 0, (), sweeper))
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    if status:
        logger.error("sweeping the job uids %s failed (status %s)", list(uids), status)


def running_uids(first: int, last: int) -> set[int]:
    """The uids of `first`-`last` that some process runs as (real, effective or saved): a
    uid no process has now gets none but from whoever starts a job as it."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                found.update(uid for uid in _uids(int(entry.name)) if first <= uid <= last)
    return found


def stop_groups(
    survivors: Sequence[RunProcess],
    *,
    uids: Collection[int],
    is_run_token: Callable[[str, str], bool],
) -> list[int]:
    """Kill the process groups of the survivors that are still their runs' processes (a
    process's token is its run's if `is_run_token(token, the run's token hash)`); the run
    ids of those killed."""
    candidates = [s for s in survivors if s.pid > 0] + _unrecorded(survivors)
    stopped = [
        s
        for s in candidates
        if _same_process(s, uids) and _started_with_token(s, is_run_token) and _kill_group(s.pid)
    ]
    deadline = time.monotonic() + GONE_WAIT_SECONDS
    for survivor in stopped:
        while _exists(survivor.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    return [s.run_id for s in stopped]


def _unrecorded(survivors: Sequence[RunProcess]) -> list[RunProcess]:
    """The survivors whose pid was not recorded, each with every process that started with
    its run id (`_same_process` then keeps only the session leader that is its job)."""
    wanted = {s.run_id: s for s in survivors if s.pid == 0}
    if not wanted:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            run_id = _run_id_of(int(entry.name))
            if run_id in wanted:
                found.append(replace(wanted[run_id], pid=int(entry.name)))
    return found


def _run_id_of(pid: int) -> int | None:
    """The run id a process started with in its environment, if any."""
    value = _environment(pid).get(RUN_ID_VARIABLE, b"")
    return int(value) if value.isdigit() else None


def _started_with_token(survivor: RunProcess, is_run_token: Callable[[str, str], bool]) -> bool:
    """Whether the process may be its run's by the token it started with: the run ids (and
    the pids and start times) of two deployments on one host may meet, their tokens never
    do. A process that started with another token is another run's; one with none (it
    replaced its environment) is judged by the other checks, as is a run older than job
    tokens, which has no hash."""
    token = _environment(survivor.pid).get(TOKEN_VARIABLE)
    if survivor.token_hash is None or token is None:
        return True
    return is_run_token(token.decode(errors="replace"), survivor.token_hash)


def _environment(pid: int) -> dict[bytes, bytes]:
    """The environment a process started with (empty if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            variables = environ.read().split(b"\0")
    except OSError:
        return {}
    return dict(v.split(b"=", 1) for v in variables if b"=" in v)


def _same_process(survivor: RunProcess, uids: Collection[int]) -> bool:
    found = _process(survivor.pid)
    if found is None:
        return False
    session, group, uid, started = found
    lag = started - survivor.run_started.timestamp()
    return (
        session == group == survivor.pid
        and uid in uids
        and -STARTED_BEFORE_RUN_SECONDS <= lag <= STARTED_AFTER_RUN_SECONDS
    )


def _process(pid: int) -> tuple[int, int, int, float] | None:
    """A process's session, group, real uid and start (seconds since the epoch)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        uid = _uids(pid)[0]
    except (OSError, ValueError):
        return None
    # After the command's closing parenthesis: state is field 3, pgrp 5, session 6, start 22.
    group, session, ticks = int(fields[2]), int(fields[3]), int(fields[19])
    return session, group, uid, _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def _uids(pid: int) -> list[int]:
    """A process's real, effective, saved and filesystem uids."""
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"Uid:"):
                return [int(uid) for uid in line.split()[1:]]
    raise ValueError(f"no Uid in /proc/{pid}/status")


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _kill_group(pid: int) -> bool:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _exists(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
