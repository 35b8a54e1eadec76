"""The worker pool: slot threads that claim jobs, run them as child processes and finish them.

Spawning from plain threads is the fastest way this machine starts processes (see
PERFORMANCE.md); each slot runs one job at a time, and a watcher thread delivers cancels.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from jobyard.services import execution
from jobyard.services.execution import RunResult, Work
from jobyard.services.runtime import Runtime
from jobyard.worker import supervisor
from jobyard.worker.output import OutputRecorder

logger = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1.0  # an idle slot re-checks this often even without a wake-up
CANCEL_POLL_SECONDS = 0.2
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


class WorkerPool:
    """`slots` threads running jobs from the database, stopped with `stop()`."""

    def __init__(self, rt: Runtime, *, slots: int, workdir: Path) -> None:
        self.rt = rt
        self.slots = slots
        self.workdir = workdir
        self.name = execution.worker_name()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, tuple[threading.Event, OutputRecorder]] = {}  # by job id
        self._lock = threading.Lock()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        recovered = execution.recover_orphans(self.rt)
        if recovered:
            logger.warning("ended %d runs left running by a dead jobyard process", recovered)
        for index in range(self.slots):
            self._spawn_thread(self._slot_loop, f"jobyard-slot-{index}")
        if self.slots:
            self._spawn_thread(self._cancel_loop, "jobyard-cancels")

    def _spawn_thread(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def stop(self, *, cancel_running: bool = True, timeout: float = 30.0) -> None:
        """Stop claiming; cancel what runs (it is finished as cancelled) and wait for the slots."""
        self._stopping.set()
        self.rt.wakeup.notify()
        if cancel_running:
            with self._lock:
                for flag, _ in self._running.values():
                    flag.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running_job_ids(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def _slot_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                work = execution.claim_job(self.rt, worker=self.name)
            except Exception:
                logger.exception("claiming a job failed; retrying")
                self._stopping.wait(ERROR_BACKOFF_SECONDS)
                continue
            if work is None:
                self.rt.wakeup.wait(IDLE_WAIT_SECONDS)
                continue
            self._run(work)

    def _run(self, work: Work) -> None:
        claim = work.claim
        flag = threading.Event()
        recorder = OutputRecorder(self.rt, run_id=claim.run_id)
        with self._lock:
            self._running[claim.job.id] = (flag, recorder)
        try:
            try:
                result = self._execute(work, flag, recorder)
            except Exception:
                logger.exception("job %s: the worker failed while running it", claim.job.id)
                result = RunResult(None, None, False, False, recorder.offset, False)
            status = execution.finish_claim(self.rt, claim=claim, result=result)
            logger.debug("job %s attempt %s ended %s", claim.job.id, claim.attempt, status)
        except Exception:
            logger.exception("job %s: its end could not be recorded", claim.job.id)
        finally:
            with self._lock:
                self._running.pop(claim.job.id, None)

    def _execute(self, work: Work, cancel: threading.Event, recorder: OutputRecorder) -> RunResult:
        claim = work.claim
        spec = supervisor.ProcessSpec(
            argv=claim.job.argv,
            env=child_environment(work, base_url=self.rt.settings.base_url),
            cwd=str(self.workdir),
            timeout=claim.job.timeout_seconds or None,
            output_cap=self.rt.settings.output_cap_bytes,
            grace=self.rt.settings.cancel_grace_seconds,
        )
        outcome = supervisor.run_process(
            spec,
            on_start=lambda pid: execution.record_process(self.rt, run_id=claim.run_id, pid=pid),
            on_output=recorder.add,
            should_cancel=cancel.is_set,
        )
        recorder.flush()
        return RunResult(
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            timed_out=outcome.timed_out,
            cancelled=outcome.cancelled,
            output_bytes=outcome.output_bytes,
            truncated=outcome.truncated,
        )

    def _cancel_loop(self) -> None:
        """Deliver cancels asked for through the database, and flush quiet jobs' output."""
        while not self._stopping.wait(CANCEL_POLL_SECONDS):
            self._flush_stale_output()
            running = self.running_job_ids
            if not running:
                continue
            try:
                wanted = execution.cancels_requested(self.rt, job_ids=running)
            except Exception:
                logger.exception("checking for cancels failed")
                continue
            self._flag(wanted)

    def _flag(self, job_ids: list[int]) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id in self._running:
                    self._running[job_id][0].set()

    def _flush_stale_output(self) -> None:
        with self._lock:
            recorders = [recorder for _, recorder in self._running.values()]
        for recorder in recorders:
            try:
                recorder.flush_if_stale()
            except Exception:
                logger.exception("storing output of run %s failed", recorder.run_id)
