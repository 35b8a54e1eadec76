"""The worker engine: one thread that runs jobs as child processes and records them in the
database, and a housekeeping thread for leases, cancels, live output and the reaper.

The engine thread alternates between the reports of its spawner processes (see `remote`:
they start, watch and reap the jobs' processes) and the database. When runs have ended or
slots are free it takes a turn at the database, one transaction that stores the ends of the
runs that ended since the last turn and claims jobs for the free slots, then hands them to
the spawners. Under load, runs end while a turn is written, so the next turn carries them
all and the database work per job shrinks as the load grows; an idle pool still starts each
job at once, and records its end with the next claim or a few milliseconds after it.

Spawning happens in other processes because it would hold this thread up: vfork waits for
each child's exec, and the GIL then has to be won back from the server's other threads. Threads
in this process would not help: threads that hold the GIL for their work and give it up at
every system call spend their time waiting for each other. The same engine runs embedded in
`jobyard serve` and alone in `jobyard worker`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from jobyard.domain.run_end import NO_PROCESS, ProcessEnd
from jobyard.services import execution, worker_registry
from jobyard.services.execution import Work
from jobyard.services.runtime import Runtime
from jobyard.services.wakeup import DoorbellWorkListener, WorkListener
from jobyard.services.worker_registry import WorkerIdentity
from jobyard.worker import confinement, observing
from jobyard.worker.confinement import Confinement
from jobyard.worker.due import NextDue
from jobyard.worker.leases import Every, Leases
from jobyard.worker.output import Backoff, OutputRecorder
from jobyard.worker.remote import RemoteSupervisor, spawners_for
from jobyard.worker.starting import Running, Starter, late_to_start

logger = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = (
    1.0  # with wake-ups (in process, NOTIFY, doorbell) an idle pool re-checks this often
)
LISTEN_SECONDS = 0.25  # how long the listener blocks before checking whether to stop
SQLITE_POLL_SECONDS = 0.1  # where other processes on SQLite cannot wake us: poll this often
HOUSEKEEPING_SECONDS = 0.2  # cancels and quiet output are picked up this fast
ERROR_BACKOFF_SECONDS = 1.0  # the listener's, after its connection broke
MAX_BATCH = 128  # jobs claimed in one transaction
FIRST_CLAIM = 8  # jobs claimed by the first turn of a pool that runs nothing
# Turns the database may refuse (not merely fail to reach) a run's end before it is left to
# the reaper; an end the database cannot be reached for is kept and retried without limit.
MAX_END_ATTEMPTS = 3
# Under a backlog, the next turn waits this long for more slots to come free: the jobs are
# queued anyway, and a turn's fixed cost (about 1 ms on SQLite) is shared by more of them.
# Measured with 5,000 `true` jobs on 128 slots: 0.27 ms of server CPU per job with 2 ms,
# 0.24 with 10, 0.23 with 20.
GATHER_SECONDS = 0.02
# While claims come less than this far apart, a run's end (with nothing to claim) waits up
# to this long for the next claim and is stored in its turn: one-by-one launches a few
# milliseconds apart then cost one turn a job instead of two (the turn is most of the
# engine's work: 1,000 sequential `true` launches on 16 slots took 1.49 turns a job before,
# 0.98 after). Claims further apart, and a draining pool, store each end at once: a wait
# there would only make the job's end later (launches at 100/s: launch→finished 5 → 10 ms).
END_WAIT_SECONDS = 0.005


class Engine:
    """Runs up to `slots` jobs from the database at once; `drain()` then `stop()` to end."""

    def __init__(
        self,
        rt: Runtime,
        *,
        slots: int,
        confinement: Confinement | None = None,
        end_wait: float = END_WAIT_SECONDS,
    ) -> None:
        """`confinement`: how jobs run (see `confinement.prepare`, which `start` calls when
        none is given); `end_wait`: see `END_WAIT_SECONDS`."""
        self.rt = rt
        self.slots = slots
        self.confinement = confinement
        self._end_wait = end_wait
        self.identity = WorkerIdentity(id=None, name=worker_registry.worker_name())
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._supervisor = RemoteSupervisor(spawners=spawners_for(slots))
        self._engine: threading.Thread | None = None
        # By run id, from claim until its end is stored: a worker that was frozen past its
        # lease may hold an old run of a job beside the job's new one, and each ends alone.
        self._running: dict[int, Running] = {}
        self._lock = threading.RLock()  # a signal handler may hand jobs back
        self._free = slots  # slots not running a process
        self._ended: list[tuple[Running, ProcessEnd]] = []  # processes whose end is not stored
        self._batch = max(1, slots // 2)  # the batch worth waiting a moment for under load
        self._claim_limit = FIRST_CLAIM  # what a turn may claim at most (see `_after_turn`)
        self._ended_in_last_turn = 0  # processes that ended while the last turn was taken
        self._last_claim = -math.inf  # monotonic, when a turn last claimed a job
        self._claim_gap = math.inf  # seconds between the last two turns that claimed
        self._starter: Starter | None = None
        self._listener: WorkListener | DoorbellWorkListener | None = None
        self._backoff = Backoff()  # writes after the database failed one (engine, recorders)
        self._spool_dir = rt.settings.data_dir / "spool"
        self._leases = Leases(self, self._stopped)
        self._next_due = NextDue(lambda after: execution.next_due(rt, after=after))

    # Life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start running jobs (`ConfinementError` when they cannot be run as configured)."""
        if self.confinement is None:
            self.confinement = confinement.prepare(self.rt.settings, slots=self.slots)
        self._starter = Starter(self.confinement, self._supervisor, self.rt.settings)
        recovered = execution.recover_orphans(
            self.rt, stop_survivors=self.confinement.stop_survivors
        )
        if recovered:
            logger.warning("ended %d runs left running by a dead jobyard process", recovered)
        self.identity = worker_registry.register_worker(self.rt, slots=self.slots)
        self._supervisor.open()
        self.rt.wakeup.subscribe(self._supervisor.wake)
        self._engine = self._spawn(self._engine_loop, "jobyard-engine")
        self._spawn(self._housekeeping_loop, "jobyard-housekeeping")
        self._spawn(self._leases.heartbeat_loop, "jobyard-heartbeat")
        listener = self._listener = self._work_listener()
        if listener is not None:
            self._spawn(lambda: self._listen_loop(listener), "jobyard-listener")
        logger.info("worker %s started with %d slots", self.identity.name, self.slots)

    def _work_listener(self) -> WorkListener | DoorbellWorkListener | None:
        """What hears other processes' launches: PostgreSQL's NOTIFY, or SQLite's doorbell
        when other processes share the file (None: only this process launches, or the
        doorbell cannot be watched here and the engine polls)."""
        if self.rt.pg:
            return WorkListener(self.rt.db.url, self.rt.db.timeouts.connect_args())
        if self.rt.in_process_only or self.rt.db.sqlite_file is None:
            return None
        try:
            return DoorbellWorkListener(self.rt.db.sqlite_file)
        except OSError as error:
            logger.warning("cannot watch the doorbell (%s): polling for work instead", error)
            return None

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def drain(self, deadline: float) -> None:
        """Claim nothing more; let running jobs finish for up to `deadline` seconds, then
        hand the rest back (their jobs go back to pending for another worker)."""
        self._begin_drain()
        self._join_engine(deadline)
        self.hand_back_all()
        # It stops the rest (grace, then SIGKILL), stores their ends, then stops.
        self._join_engine(self.rt.settings.cancel_grace_seconds + 30)

    def hand_back_all(self) -> None:
        """Stop every running job now and give it back."""
        self._begin_drain()
        with self._lock:
            for running in self._running.values():
                if not running.process_ended:
                    running.hand_back()
                    running.stop_requested = True
        self._supervisor.wake()

    def _begin_drain(self) -> None:
        """Claim nothing more; the engine stops once every job it runs has ended."""
        self._draining.set()
        self._supervisor.wake()

    def stop(self) -> None:
        """Drain with the configured deadline, then stop housekeeping and deregister."""
        if not self._draining.is_set():
            self.drain(self.rt.settings.drain_seconds)
        self._stopped.set()
        self._supervisor.wake()
        for thread in self._threads:
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
        self.rt.wakeup.unsubscribe(self._supervisor.wake)
        if not (self._engine and self._engine.is_alive()):
            self._supervisor.close()  # its thread has ended, and with it every job
            if self._starter is not None:
                self._starter.release()
            if self.confinement is not None:
                self.confinement.release()
        worker_registry.stop_worker(self.rt, worker=self.identity)

    def _join_engine(self, timeout: float) -> None:
        if self._engine is not None:
            self._engine.join(timeout)

    @property
    def running_job_ids(self) -> list[int]:
        with self._lock:
            return sorted({r.job_id for r in self._running.values()})

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def held_runs(self) -> dict[int, Running]:
        """The runs this worker holds a lease of, by run id."""
        with self._lock:
            return dict(self._running)

    # The engine -------------------------------------------------------------------------

    def _idle_wait(self) -> float:
        """How long an idle engine waits before looking for work unasked: until the next job
        launched for later comes due, at most the poll's interval."""
        heard = self.rt.in_process_only or self._listener is not None
        poll = IDLE_WAIT_SECONDS if heard else SQLITE_POLL_SECONDS
        due_in = self._next_due.seconds_left()
        return poll if due_in is None else min(poll, due_in)

    def _engine_loop(self) -> None:
        """Watch the children; take a turn at the database whenever slots are free (after
        finding no work, only once woken or after the idle wait) or ends are due (see
        `END_WAIT_SECONDS`); stop when draining and every run's end is stored."""
        idle_mark: int | None = None  # the wakeup mark when a claim last found too little
        idle_until = 0.0
        while not self._stopped.is_set():
            mark = self.rt.wakeup.mark()
            free = self._claimable_slots()
            if free and mark == idle_mark and time.monotonic() < idle_until:
                free = 0  # nothing new since the queue was found empty
            ended = self._take_ended() if free or self._ends_due() else []
            if ended or free:
                began = time.time()
                works = self._turn_or_none(ended, free)
                if works is None:
                    self._watch_children_for(self._backoff.failed())
                    continue
                self._backoff.succeeded()
                self._hand_out(works)
                self._after_turn(asked=free, got=len(works))
                self._next_due.after_turn(mark, began=began, claimed=len(works), asked=free)
                if works:
                    self._claimed_at(time.monotonic())
                if len(works) < free:
                    idle_mark, idle_until = mark, time.monotonic() + self._idle_wait()
                elif self._busy() and self._free_slots() < self._batch:
                    # A backlog, and (nearly) every slot taken: let a batch's worth of runs
                    # end before the next turn, or a transaction per job would make the
                    # database the limit. (Going on at once after a full claim makes every
                    # other turn one of the few ends that came meanwhile: a turn's fixed
                    # cost for a handful of jobs.)
                    self._gather(GATHER_SECONDS)
                    continue
            elif self._draining.is_set() and self._all_stored():
                return
            self._supervisor.step(self._wait_before_next_turn(idle_until))

    def _turn_or_none(
        self, ended: list[tuple[Running, ProcessEnd]], free: int
    ) -> list[Work] | None:
        try:
            return self._turn(ended, free)
        except Exception as error:
            if execution.worth_retrying(error):
                logger.warning("the database is out of reach (%s); ends are kept", error)
            else:
                logger.exception("a turn at the database failed; retrying")
            return None

    def _wait_before_next_turn(self, idle_until: float) -> float | None:
        """How long the children may be watched before the next turn is due (None: until
        one of them needs looking after)."""
        now = time.monotonic()
        ends_due = self._ends_due_in(now)
        if self._claimable_slots():
            claims_due = max(0.0, idle_until - now)
            return claims_due if ends_due is None else min(claims_due, ends_due)
        return ends_due

    def _claimed_at(self, now: float) -> None:
        self._claim_gap, self._last_claim = now - self._last_claim, now

    def _ends_due(self) -> bool:
        return self._ends_due_in(time.monotonic()) == 0.0

    def _ends_due_in(self, now: float) -> float | None:
        """Seconds until the ends not stored yet must be (see `END_WAIT_SECONDS`); None
        when there are none."""
        with self._lock:
            if not self._ended:
                return None
            if self._draining.is_set() or self._claim_gap >= self._end_wait:
                return 0.0
            oldest = min(running.ended_at for running, _ in self._ended)
        return max(0.0, oldest + self._end_wait - now)

    def _watch_children_for(
        self, seconds: float, *, enough: Callable[[], bool] = lambda: False
    ) -> None:
        """Only look after the children for a while, or until `enough` says so (a step
        returns at their first event)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stopped.is_set():
            if enough():
                return
            self._supervisor.step(left)

    def _gather(self, seconds: float) -> None:
        """Watch the children until a batch's worth of runs has ended, or so few still run
        that they would be over before a turn like the last one is (the spawners would
        then wait for it: on PostgreSQL a turn of 64 jobs takes 40-60 ms, in which as many
        `true` jobs end); for up to `seconds`."""
        self._watch_children_for(seconds, enough=self._time_for_a_turn)

    def _time_for_a_turn(self) -> bool:
        with self._lock:
            running = self.slots - self._free
            return len(self._ended) >= self._batch or running <= self._ended_in_last_turn

    def _take_ended(self) -> list[tuple[Running, ProcessEnd]]:
        with self._lock:
            ended, self._ended = self._ended, []
            return ended

    def _claimable_slots(self) -> int:
        """How many jobs the next turn may claim (see `_after_turn`)."""
        with self._lock:
            return 0 if self._draining.is_set() else min(self._free, self._claim_limit)

    def _after_turn(self, *, asked: int, got: int) -> None:
        """Note what a turn claimed and what ended meanwhile (see `_time_for_a_turn`).

        Claims start small after the queue was found empty, and double while they get all
        they ask for: the first jobs of a backlog start at once, and the spawners have them
        to run while the next turns claim more (a first turn of 128 would keep them
        waiting for all of it)."""
        with self._lock:
            self._ended_in_last_turn = len(self._ended)
        if got < asked:
            self._claim_limit = FIRST_CLAIM
        elif got == self._claim_limit:
            self._claim_limit = min(MAX_BATCH, 2 * got)

    def _free_slots(self) -> int:
        with self._lock:
            return 0 if self._draining.is_set() else self._free

    def _all_stored(self) -> bool:
        with self._lock:
            return not self._running and not self._ended

    def _busy(self) -> bool:
        """Whether other slots run processes whose ends will follow soon."""
        with self._lock:
            return self.slots - self._free > 1

    def _turn(self, ended: list[tuple[Running, ProcessEnd]], free: int) -> list[Work]:
        """Store the ends (each with the last of its output) and claim up to `free` jobs."""
        endings = []
        for running, result in ended:
            work, output = running.work, running.recorder.pending()
            if running.handing_back:
                ending = execution.hand_back_ending(
                    work.claim,
                    result,
                    worker_id=work.worker_id,
                    output=output,
                    reason=running.hand_back_reason,
                )
            else:
                ending = execution.ending_of(
                    work.claim, result, worker_id=work.worker_id, output=output
                )
            endings.append(ending)
        try:
            statuses, works = execution.end_and_claim(
                self.rt, endings, worker=self.identity, limit=free
            )
        except Exception as error:
            self._retry_later(ended, refused=not execution.worth_retrying(error))
            raise
        self._retry_later([(r, result) for r, result in ended if r.run_id not in statuses])
        with self._lock:
            for running, _ in ended:
                if running.run_id in statuses:
                    running.recorder.stored()
                    self._running.pop(running.run_id, None)
        for running, result in ended:
            status = statuses.get(running.run_id)
            if status is not None and not running.handing_back:
                observing.run_ended(running, result, status)
        return works

    def _retry_later(
        self, ended: list[tuple[Running, ProcessEnd]], *, refused: bool = True
    ) -> None:
        """Keep ends that were not stored, with their output, for the next turn. One the
        database could not be reached for is kept for as long as it takes: the heartbeat
        keeps renewing its run's lease meanwhile. One the database refused a few times is
        given up (its lease then lapses, and the reaper ends the run) so it cannot stall
        the pool."""
        with self._lock:
            for running, result in ended:
                running.end_attempts += refused
                if running.end_attempts < MAX_END_ATTEMPTS:
                    self._ended.append((running, result))
                else:
                    logger.error("job %s: giving up on recording its end", running.job_id)
                    running.recorder.stored()
                    self._running.pop(running.run_id, None)

    def _hand_out(self, works: list[Work]) -> None:
        claimed = [Running(work, self._recorder(work.claim.run_id)) for work in works]
        late = late_to_start(works, lease_seconds=self.rt.settings.lease_seconds)
        starting = []
        with self._lock:
            for running in claimed:
                self._running[running.run_id] = running
                if running.run_id in late:
                    running.hand_back(execution.LATE_TO_START)
                elif self._draining.is_set():
                    running.hand_back()
                if running.handing_back:  # given back before it starts
                    running.process_ended = True
                    self._ended.append((running, NO_PROCESS))
                else:
                    self._free -= 1
                    starting.append(running)
        for running in starting:
            self._start(running)

    def _recorder(self, run_id: int) -> OutputRecorder:
        return OutputRecorder(
            self.rt, run_id=run_id, backoff=self._backoff, spool_dir=self._spool_dir
        )

    def _start(self, running: Running) -> None:
        if running.handing_back:  # handed back before it started
            self._process_ended(running, NO_PROCESS)
            return
        if self._starter is None:
            raise RuntimeError("the engine runs jobs only once started")
        self._starter.start(running, self._process_ended)

    def _process_ended(self, running: Running, result: ProcessEnd) -> None:
        running.recorder.close()
        running.ended_at = time.monotonic()
        with self._lock:
            running.process_ended = True
            self._free += 1
            self._ended.append((running, result))

    # Housekeeping -----------------------------------------------------------------------

    def _housekeeping_loop(self) -> None:
        lease = self.rt.settings.lease_seconds
        tasks = [
            Every(HOUSEKEEPING_SECONDS, self._record_pids),
            Every(HOUSEKEEPING_SECONDS, self._deliver_cancels),
            Every(HOUSEKEEPING_SECONDS, self._flush_quiet_output),
            Every(lease / 2, self._leases.reap),
        ]
        while not self._stopped.wait(HOUSEKEEPING_SECONDS):
            now = time.monotonic()
            for task in tasks:
                task.tick(now)

    def _record_pids(self) -> None:
        """Publish the process ids of jobs that outlive a housekeeping tick (a short job's
        comes with its end: writing it sooner would only compete with the engine's turns)."""
        started_before = time.monotonic() - HOUSEKEEPING_SECONDS
        with self._lock:
            fresh = [
                r
                for r in self._running.values()
                if r.pid
                and not r.pid_recorded
                and not r.process_ended
                and r.started_at <= started_before
            ]
        if fresh:
            processes = {r.run_id: (r.pid, r.spawned) for r in fresh}
            execution.record_processes(self.rt, processes=processes)
            for running in fresh:
                running.pid_recorded = True

    def _deliver_cancels(self) -> None:
        running = self.running_job_ids
        if running:
            self._stop_jobs(execution.cancels_requested(self.rt, job_ids=running))

    def _stop_jobs(self, job_ids: list[int]) -> None:
        wanted = set(job_ids)
        with self._lock:
            for running in self._running.values():
                if running.job_id in wanted:
                    running.stop_requested = True

    def _flush_quiet_output(self) -> None:
        with self._lock:
            recorders = [running.recorder for running in self._running.values()]
        for recorder in recorders:
            recorder.flush_if_stale()

    def _listen_loop(self, listener: WorkListener | DoorbellWorkListener) -> None:
        """Other processes' launches wake the engine at once (polling is only the fallback)."""
        while not self._stopped.is_set():
            try:
                if listener.wait(LISTEN_SECONDS):
                    self.rt.wakeup.heard()
            except Exception:
                logger.exception("listening for work failed; reconnecting")
                listener.close()
                self._stopped.wait(ERROR_BACKOFF_SECONDS)
