"""A worker's side of the leases: it renews those of its runs from a thread and a database
connection of its own (`Leases.heartbeat_loop`), stops the runs it no longer holds, and reaps
the fleet's runs whose lease lapsed (`Leases.reap`, a housekeeping task: `Every`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from jobyard.services import execution, metrics, worker_registry
from jobyard.services.runtime import Runtime
from jobyard.services.worker_registry import WorkerIdentity
from jobyard.worker.confinement import Confinement
from jobyard.worker.starting import Running

logger = logging.getLogger(__name__)

OUT_OF_TOUCH_RETRY_SECONDS = 0.5  # how often housekeeping and the heartbeat try in an outage


class Every:
    """Runs a task when its period has passed, from a loop that ticks faster."""

    def __init__(self, seconds: float, task: Callable[[], object]) -> None:
        self.seconds = seconds
        self.task = task
        self._next = 0.0
        self._failing = False

    def tick(self, now: float) -> None:
        if now >= self._next:
            self._next = now + self.seconds
            try:
                self.task()
            except Exception as error:
                self._failed(now, error)
            else:
                self._failing = False

    def _failed(self, now: float, error: Exception) -> None:
        """Log a failure; while the database is out of reach, once, and try less often."""
        if not execution.worth_retrying(error):
            logger.exception("worker housekeeping failed: %s", self.task)
            return
        self._next = now + max(self.seconds, OUT_OF_TOUCH_RETRY_SECONDS)
        if not self._failing:
            logger.warning("worker housekeeping: the database is out of reach (%s)", error)
        self._failing = True


class LeaseHolder(Protocol):
    """What the leases need of the engine that holds them."""

    rt: Runtime
    identity: WorkerIdentity
    confinement: Confinement | None

    @property
    def draining(self) -> bool: ...

    def held_runs(self) -> dict[int, Running]: ...


class Leases:
    def __init__(self, holder: LeaseHolder, stopped: threading.Event) -> None:
        self._holder = holder
        self._stopped = stopped
        # When this worker last found the database out of reach (monotonic): its reaper
        # then waits a lease, so the others have had as long to renew theirs.
        self._out_of_touch_at = -math.inf

    def heartbeat_loop(self) -> None:
        """Renew the leases from a thread and a database connection of their own: neither
        housekeeping's other tasks nor request threads (which may hold every connection of
        the shared pool) can hold a renewal up until the lease lapses. While the database
        is out of reach it tries again often: the leases are renewed as soon as it is back."""
        rt = self._holder.rt
        lease = rt.settings.lease_seconds
        # A renewal that waits is worse than one skipped: the next comes a third of a lease
        # later, and a renewal that waited past the lease would be too late anyway.
        limits = rt.db.timeouts.at_most(lock=lease / 4, statement=lease / 2)
        own = replace(rt, db=rt.db.dedicated(timeouts=limits))
        period = lease / 3
        failing = False
        try:
            while not self._stopped.is_set():
                wait = period
                try:
                    self.heartbeat(own)
                except Exception as error:
                    self._note_out_of_touch(error, first=not failing)
                    failing, wait = True, min(period, OUT_OF_TOUCH_RETRY_SECONDS)
                else:
                    if failing:
                        logger.warning("heartbeat: the database is back; leases renewed")
                    failing = False
                self._stopped.wait(wait)
        finally:
            own.db.dispose()

    def _note_out_of_touch(self, error: Exception, *, first: bool) -> None:
        if execution.worth_retrying(error):
            self._out_of_touch_at = time.monotonic()
            if first:
                logger.warning("heartbeat: the database is out of reach (%s)", error)
        else:
            logger.exception("heartbeat failed")

    def heartbeat(self, rt: Runtime | None = None) -> None:
        """Renew leases independently of the jobs' own work; stop runs we no longer hold.
        `rt` is the heartbeat's own connection to the database (the shared pool's if None)."""
        holder = self._holder
        held = holder.held_runs()
        lost = worker_registry.heartbeat(
            rt or holder.rt, worker=holder.identity, run_ids=list(held), draining=holder.draining
        )
        # A run that simply finished meanwhile was not lost: its process has ended (the
        # engine may have just closed it, which the renewal then no longer finds running).
        lost = {run_id for run_id in lost if not held[run_id].process_ended}
        if lost:
            logger.warning("lost the lease of runs %s: stopping them", sorted(lost))
            for run_id in lost:
                held[run_id].stop_requested = True

    def reap(self) -> None:
        """End runs whose lease lapsed, unless this worker was itself out of touch with the
        database within a lease: the other workers may have been too (an outage), and get
        as long as a lease to renew theirs before anything of theirs is taken for dead."""
        rt, confined = self._holder.rt, self._holder.confinement
        if time.monotonic() - self._out_of_touch_at < rt.settings.lease_seconds:
            return
        try:
            stop = None if confined is None else confined.stop_survivors
            ended = execution.reap_expired(rt, stop_survivors=stop)
        except Exception as error:
            if execution.worth_retrying(error):
                self._out_of_touch_at = time.monotonic()
            raise
        if ended:
            metrics.RUNS_REAPED.inc(ended)
            logger.warning("ended %d runs whose worker stopped renewing its lease", ended)
