"""How the engine starts a claimed job: the job as the engine holds it (`Running`), and what
its process gets (`Starter`): its argv in its sandbox, a small explicit environment, a
directory of its own (an emptied one of an earlier run as the same uid when there is one), a
uid of its own where the confinement has them, and what becomes of all that when it ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from jobyard.domain.run_end import NO_PROCESS, ProcessEnd
from jobyard.services.execution import HANDED_BACK, LATE_TO_START, Work
from jobyard.settings import Settings
from jobyard.worker import confinement, observing, rundir, spawning, survivors
from jobyard.worker.confinement import Confinement
from jobyard.worker.output import OutputRecorder
from jobyard.worker.remote import RemoteSupervisor

logger = logging.getLogger(__name__)

INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
RUN_DIR_NAME_BYTES = 16
# A claimed job starts only while at least this share of its lease is left. A turn that took
# longer (its worker frozen, its database stalled), or a start command that left the engine
# late (its worker frozen after the turn), may have let the lease lapse, and another
# worker's reaper may be running the job again already: it is handed back instead, and
# claimed again with a lease of its own.
LEAST_LEASE_LEFT_TO_START = 0.5


@dataclass
class Running:
    """A job this worker runs: what to stop it with, and its output buffer."""

    work: Work
    recorder: OutputRecorder
    # Set from other threads, read by the engine's: a flag, not an Event (nobody waits on
    # it, and an Event's lock and condition per job cost the engine more than the job did).
    stop_requested: bool = False
    handing_back: bool = False
    hand_back_reason: str = HANDED_BACK  # why it is handed back, if it is
    process_ended: bool = False  # its end waits for the next turn: nothing left to stop
    end_attempts: int = 0  # turns that refused its end
    pid: int = 0
    started_at: float = 0.0  # monotonic, when its process started
    ended_at: float = 0.0  # monotonic, when its process ended
    spawned: float = 0.0  # the same moment, in seconds since the epoch (the run's `spawned`)
    pid_recorded: bool = False

    def started(self, pid: int, spawned: float) -> None:
        self.started_at = time.monotonic()
        self.pid = pid
        self.spawned = spawned
        observing.run_started(self)

    def should_stop(self) -> bool:
        return self.stop_requested

    def hand_back(self, reason: str = HANDED_BACK) -> None:
        """Give its job back instead of ending it: its run ends with `reason`, the job is due
        again."""
        self.handing_back = True
        self.hand_back_reason = reason

    @property
    def run_id(self) -> int:
        return self.work.claim.run_id

    @property
    def job_id(self) -> int:
        return self.work.claim.job.id


def inherited_environment(login: str) -> dict[str, str]:
    """What every child takes from the worker's own environment (read once per worker: a
    look-up in `os.environ` encodes its key anew, and a job needs many), and the user it
    runs as."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(USER=login, LOGNAME=login)
    return env


def child_environment(
    work: Work, *, base_url: str, inherited: dict[str, str], run_dir: str
) -> dict[str, str]:
    """A small, explicit environment: never the server's own secrets, only the job's token;
    its own directory as HOME and TMPDIR."""
    claim = work.claim
    env = inherited.copy()
    env.update(claim.job.env)
    env.update(
        {
            "HOME": run_dir,
            "TMPDIR": run_dir,
            "JOBYARD_URL": base_url,
            "JOBYARD_JOB_ID": str(claim.job.id),
            "JOBYARD_RUN_ID": str(claim.run_id),
            "JOBYARD_ATTEMPT": str(claim.attempt),
            "JOBYARD_TOKEN": work.token,
        }
    )
    return env


def start_by(work: Work, *, lease_seconds: float) -> float:
    """When its job must have started (seconds since the epoch): see
    `LEAST_LEASE_LEFT_TO_START`."""
    return work.lease_until - lease_seconds * LEAST_LEASE_LEFT_TO_START


def late_to_start(works: Sequence[Work], *, lease_seconds: float) -> set[int]:
    """The runs of `works` whose start-by has passed already (checked at their turn's end)."""
    now = time.time()
    late = {w.claim.run_id for w in works if start_by(w, lease_seconds=lease_seconds) < now}
    if late:
        logger.warning(
            "%d claimed jobs handed back: their turn ended with less than %.0f %% of their "
            "lease left",
            len(late),
            LEAST_LEASE_LEFT_TO_START * 100,
        )
    return late


def late_to_start_in_spawner(running: Running) -> None:
    """Its start command reached the spawner past its start-by: it is handed back."""
    logger.warning("job %s handed back: its start reached its spawner too late", running.job_id)
    running.hand_back(LATE_TO_START)


def _uid(user: spawning.JobUser | None) -> int | None:
    return None if user is None else user.uid


class Starter:
    """Starts the engine's jobs through its spawners; engine thread only."""

    def __init__(
        self, confined: Confinement, supervisor: RemoteSupervisor, settings: Settings
    ) -> None:
        self.confined = confined
        self._supervisor = supervisor
        self._settings = settings
        self._inherited_env = inherited_environment(confined.login)
        # Emptied run directories by the uid they belong to (None: the server's own), for the
        # next runs (see `rundir`).
        self._spare_dirs: dict[int | None, list[str]] = {}

    def start(self, running: Running, on_end: Callable[[Running, ProcessEnd], None]) -> None:
        """Start its process; `on_end` gets how it ended (a failed spawner: `NO_PROCESS`)."""
        claim, confined = running.work.claim, self.confined
        user, sweep_first = confined.take_user()
        run_dir = self._run_dir(user)
        spec = spawning.ProcessSpec(
            argv=confinement.sandboxed_argv(
                confined, claim.job.argv, run_dir=run_dir, switches=claim.job.sandbox
            ),
            env=child_environment(
                running.work,
                base_url=self._settings.base_url,
                inherited=self._inherited_env,
                run_dir=run_dir,
            ),
            cwd=run_dir,
            user=user,
            own_cwd=True,
            sweep_first=sweep_first,
            timeout=claim.job.timeout_seconds or None,
            output_cap=self._settings.output_cap_bytes,
            grace=self._settings.cancel_grace_seconds,
            start_by=start_by(running.work, lease_seconds=self._settings.lease_seconds),
        )

        def ended(outcome: ProcessEnd | None, error: Exception | None) -> None:
            if isinstance(error, spawning.TooLateToStart):  # nothing ran: its uid as it was
                confined.give_back(user, swept=not sweep_first)
                late_to_start_in_spawner(running)
                on_end(running, NO_PROCESS)
                return
            if outcome is None and user is not None and user.sweeper is not None:
                # Its spawner failed or died and may not have killed it (its pid unknown):
                # whatever runs as its uid goes before the job may be retried.
                survivors.sweep_uids([user.uid], sweeper=user.sweeper)
            confined.give_back(user, swept=True)  # by its spawner, or just now
            if outcome is not None:  # its spawner emptied the directory
                self._spare_dirs.setdefault(_uid(user), []).append(run_dir)
            on_end(running, _end_of(running, outcome, error))

        self._supervisor.start(
            spec,
            on_start=running.started,
            on_output=running.recorder.add,
            should_cancel=running.should_stop,
            on_end=ended,
        )

    def _run_dir(self, user: spawning.JobUser | None) -> str:
        """An emptied directory of an earlier run as the same uid, or a new name."""
        spare = self._spare_dirs.get(_uid(user))
        if spare:
            return spare.pop()
        return str(self.confined.runs_root / secrets.token_hex(RUN_DIR_NAME_BYTES))

    def release(self) -> None:
        """Remove the spare directories (once every job has ended)."""
        for spare in self._spare_dirs.values():
            for path in spare:
                rundir.remove_tree(path)
        self._spare_dirs.clear()


def _end_of(running: Running, outcome: ProcessEnd | None, error: Exception | None) -> ProcessEnd:
    if outcome is None:
        logger.error("job %s: the worker failed while running it", running.job_id, exc_info=error)
        return replace(NO_PROCESS, output_bytes=running.recorder.offset)
    # A job handed back was stopped by its worker, not cancelled by anyone.
    return replace(outcome, cancelled=outcome.cancelled and not running.handing_back)
