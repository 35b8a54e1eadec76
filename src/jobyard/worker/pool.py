"""The worker engine: slot threads that claim jobs, run them as child processes and finish
them, plus a housekeeping thread for leases, cancels, live output and the reaper.

Spawning from plain threads is the fastest way this machine starts processes (see
PERFORMANCE.md). The same engine runs embedded in `jobyard serve` and alone in `jobyard worker`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobyard.services import execution
from jobyard.services.execution import RunResult, Work, WorkerIdentity
from jobyard.services.runtime import Runtime
from jobyard.store.notify import Listener
from jobyard.worker import supervisor
from jobyard.worker.output import OutputRecorder

logger = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1.0  # with wake-ups (in process, or NOTIFY) an idle slot re-checks this often
LISTEN_SECONDS = 0.25  # how long the listener blocks before checking whether to stop
SQLITE_POLL_SECONDS = 0.1  # other processes on SQLite cannot wake us: poll this often
HOUSEKEEPING_SECONDS = 0.2  # cancels and quiet output are picked up this fast
ERROR_BACKOFF_SECONDS = 1.0
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR")


def child_environment(work: Work, *, base_url: str) -> dict[str, str]:
    """A small, explicit environment: never the server's own secrets, only the job's token."""
    claim = work.claim
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(claim.job.env)
    env.update(
        {
            "JOBYARD_URL": base_url,
            "JOBYARD_JOB_ID": str(claim.job.id),
            "JOBYARD_RUN_ID": str(claim.run_id),
            "JOBYARD_ATTEMPT": str(claim.attempt),
            "JOBYARD_TOKEN": work.token,
        }
    )
    return env


@dataclass
class _Running:
    """A job this worker runs: what to stop it with, and its output buffer."""

    work: Work
    recorder: OutputRecorder
    stop: threading.Event = field(default_factory=threading.Event)
    handing_back: bool = False
    pid: int = 0
    pid_recorded: bool = False


class Every:
    """Runs a task when its period has passed, from a loop that ticks faster."""

    def __init__(self, seconds: float, task: Callable[[], object]) -> None:
        self.seconds = seconds
        self.task = task
        self._next = 0.0

    def tick(self, now: float) -> None:
        if now >= self._next:
            self._next = now + self.seconds
            try:
                self.task()
            except Exception:
                logger.exception("worker housekeeping failed: %s", self.task)


class WorkerPool:
    """`slots` threads running jobs from the database; `drain()` then `stop()` to end."""

    def __init__(self, rt: Runtime, *, slots: int, workdir: Path) -> None:
        self.rt = rt
        self.slots = slots
        self.workdir = workdir
        self.identity = WorkerIdentity(id=None, name=execution.worker_name())
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._slot_threads: list[threading.Thread] = []
        self._running: dict[int, _Running] = {}  # by job id
        self._lock = threading.Lock()
        self._listener: Listener | None = None

    # Life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        recovered = execution.recover_orphans(self.rt)
        if recovered:
            logger.warning("ended %d runs left running by a dead jobyard process", recovered)
        self.identity = execution.register_worker(self.rt, slots=self.slots)
        for index in range(self.slots):
            self._slot_threads.append(self._spawn(self._slot_loop, f"jobyard-slot-{index}"))
        self._spawn(self._housekeeping_loop, "jobyard-housekeeping")
        if self.rt.pg:
            listener = self._listener = Listener(self.rt.db.url)
            self._spawn(lambda: self._listen_loop(listener), "jobyard-listener")
        logger.info("worker %s started with %d slots", self.identity.name, self.slots)

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def drain(self, deadline: float) -> None:
        """Claim nothing more; let running jobs finish for up to `deadline` seconds, then
        hand the rest back (their jobs go back to pending for another worker)."""
        self._draining.set()
        self.rt.wakeup.notify()
        self._join_slots(deadline)
        self.hand_back_all()
        self._join_slots(self.rt.settings.cancel_grace_seconds + 5)

    def hand_back_all(self) -> None:
        """Stop every running job now and give it back."""
        self._draining.set()
        with self._lock:
            for running in self._running.values():
                running.handing_back = True
                running.stop.set()

    def stop(self) -> None:
        """Drain with the configured deadline, then stop housekeeping and deregister."""
        if not self._draining.is_set():
            self.drain(self.rt.settings.drain_seconds)
        self._stopped.set()
        for thread in self._threads:
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
        execution.stop_worker(self.rt, worker=self.identity)

    def _join_slots(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._slot_threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running_job_ids(self) -> list[int]:
        with self._lock:
            return list(self._running)

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    # Slots ------------------------------------------------------------------------------

    def _idle_wait(self) -> float:
        return IDLE_WAIT_SECONDS if self.rt.pg or self.rt.in_process_only else SQLITE_POLL_SECONDS

    def _slot_loop(self) -> None:
        while not self._draining.is_set():
            try:
                work = execution.claim_job(self.rt, worker=self.identity)
            except Exception:
                logger.exception("claiming a job failed; retrying")
                self._draining.wait(ERROR_BACKOFF_SECONDS)
                continue
            if work is None:
                self.rt.wakeup.wait(self._idle_wait())
                continue
            self._run(work)

    def _run(self, work: Work) -> None:
        claim = work.claim
        running = _Running(work, OutputRecorder(self.rt, run_id=claim.run_id))
        with self._lock:
            self._running[claim.job.id] = running
        try:
            result = self._execute(running)
            if running.handing_back:
                execution.hand_back(self.rt, claim=claim, result=result, worker_id=work.worker_id)
            else:
                execution.finish_claim(
                    self.rt, claim=claim, result=result, worker_id=work.worker_id
                )
        except Exception:
            logger.exception("job %s: its end could not be recorded", claim.job.id)
        finally:
            with self._lock:
                self._running.pop(claim.job.id, None)

    def _execute(self, running: _Running) -> RunResult:
        claim = running.work.claim
        spec = supervisor.ProcessSpec(
            argv=claim.job.argv,
            env=child_environment(running.work, base_url=self.rt.settings.base_url),
            cwd=str(self.workdir),
            timeout=claim.job.timeout_seconds or None,
            output_cap=self.rt.settings.output_cap_bytes,
            grace=self.rt.settings.cancel_grace_seconds,
        )
        try:
            outcome = supervisor.run_process(
                spec,
                on_start=lambda pid: setattr(running, "pid", pid),
                on_output=running.recorder.add,
                should_cancel=running.stop.is_set,
            )
        except Exception:
            logger.exception("job %s: the worker failed while running it", claim.job.id)
            return RunResult(None, None, False, False, running.recorder.offset, False)
        finally:
            running.recorder.flush()
        return RunResult(
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            timed_out=outcome.timed_out,
            cancelled=outcome.cancelled and not running.handing_back,
            output_bytes=outcome.output_bytes,
            truncated=outcome.truncated,
            process_id=outcome.pid,
        )

    # Housekeeping -----------------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        lease = self.rt.settings.lease_seconds
        tasks = [
            Every(HOUSEKEEPING_SECONDS, self._record_pids),
            Every(HOUSEKEEPING_SECONDS, self._deliver_cancels),
            Every(HOUSEKEEPING_SECONDS, self._flush_quiet_output),
            Every(lease / 3, self._heartbeat),
            Every(lease / 2, self._reap),
        ]
        while not self._stopped.wait(HOUSEKEEPING_SECONDS):
            now = time.monotonic()
            for task in tasks:
                task.tick(now)

    def _record_pids(self) -> None:
        """Publish the process ids of jobs that outlive a housekeeping tick."""
        with self._lock:
            fresh = [r for r in self._running.values() if r.pid and not r.pid_recorded]
        if fresh:
            execution.record_processes(self.rt, pids={r.work.claim.run_id: r.pid for r in fresh})
            for running in fresh:
                running.pid_recorded = True

    def _deliver_cancels(self) -> None:
        running = self.running_job_ids
        if running:
            self._stop_jobs(execution.cancels_requested(self.rt, job_ids=running))

    def _stop_jobs(self, job_ids: list[int]) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id in self._running:
                    self._running[job_id].stop.set()

    def _flush_quiet_output(self) -> None:
        with self._lock:
            recorders = [running.recorder for running in self._running.values()]
        for recorder in recorders:
            recorder.flush_if_stale()

    def _heartbeat(self) -> None:
        """Renew leases independently of the jobs' own work; stop runs we no longer hold."""
        with self._lock:
            by_run = {r.work.claim.run_id: job_id for job_id, r in self._running.items()}
        lost = execution.heartbeat(
            self.rt, worker=self.identity, run_ids=list(by_run), draining=self.draining
        )
        with self._lock:  # a run that simply finished meanwhile was not lost
            still = {r.work.claim.run_id for r in self._running.values()}
        lost &= still
        if lost:
            logger.warning("lost the lease of runs %s: stopping them", sorted(lost))
            self._stop_jobs([by_run[run_id] for run_id in lost])

    def _reap(self) -> None:
        ended = execution.reap_expired(self.rt)
        if ended:
            logger.warning("ended %d runs whose worker stopped renewing its lease", ended)

    def _listen_loop(self, listener: Listener) -> None:
        """PostgreSQL NOTIFY wakes the idle slots at once (polling is only the fallback)."""
        while not self._stopped.is_set():
            try:
                if listener.wait(LISTEN_SECONDS):
                    self.rt.wakeup.notify()
            except Exception:
                logger.exception("listening for work failed; reconnecting")
                listener.close()
                self._stopped.wait(ERROR_BACKOFF_SECONDS)
