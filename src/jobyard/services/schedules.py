"""Use cases on schedules: define, edit, pause, resume, delete and list them, read their
fire times; and fire the due ones, exactly once per fire time whoever else fires too.

Any number of processes fire schedules (every `jobyard serve` and `jobyard worker`): each
takes the due ones in a transaction (locked on PostgreSQL, so that two do not work on the
same one; SQLite has one writer), inserts the (schedule, fire time) row, launches the job and
moves `next_run` on, all in that transaction. The row's primary key is what makes a fire time
launch one job, across processes, hosts and restarts; the lock only saves wasted work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import schedules as rules
from jobyard.domain.listing import Listing
from jobyard.domain.models import JobOptions
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal, Role, Scope, require
from jobyard.domain.schedules import Fire, FireOutcome, Misfire, Schedule, Timing
from jobyard.domain.statuses import JobStatus
from jobyard.errors import JobyardError, ValidationFailed
from jobyard.services import audit, jobs
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, tables
from jobyard.store import jobs as job_store
from jobyard.store import schedules as schedule_store

FIRE_BATCH = 50  # due schedules fired in one transaction
# Fields a schedule's body may set, with what leaving one out of a create (or an explicit
# null) stands for.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "device_id": None,
    "config_id": None,
    "options": JobOptions(),
    "context": {},
    "priority": 0,
    "cron": None,
    "interval_seconds": None,
    "timezone": "UTC",
    "misfire": Misfire.SKIP,
    "skip_if_running": False,
    "paused": False,
}
TIMING_FIELDS = frozenset({"cron", "interval_seconds", "timezone"})


@dataclass(frozen=True)
class Definition:
    """A schedule as defined (everything but its state), checked as a whole."""

    name: str
    package_id: int
    values: Mapping[str, Any]

    def launch(self, *, run_at: datetime | None = None) -> jobs.LaunchRequest:
        return jobs.LaunchRequest(
            package_id=self.package_id,
            device_id=self.values["device_id"],
            config_id=self.values["config_id"],
            options=self.values["options"],
            run_at=run_at,
            context=self.values["context"],
            priority=self.values["priority"],
        )

    def timing(self, anchor: datetime) -> Timing:
        return Timing(
            cron=self.values["cron"],
            interval_seconds=self.values["interval_seconds"],
            timezone=self.values["timezone"],
            anchor=anchor,
        )


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """An explicit null stands for the field's default; name and package cannot be null."""
    given = dict(values)
    for key, value in values.items():
        if value is None:
            if key not in DEFAULTS:
                raise ValidationFailed(f"{key} may not be null", field=key)
            given[key] = DEFAULTS[key]
    return given


def _definition(values: Mapping[str, Any]) -> Definition:
    name, package_id = values.get("name"), values.get("package_id")
    if not name:
        raise ValidationFailed("name is required", field="name")
    if not package_id:
        raise ValidationFailed("package_id is required", field="package_id")
    rest = {key: values.get(key, default) for key, default in DEFAULTS.items()}
    return Definition(name=name, package_id=package_id, values=rest)


def _of(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "package_id": schedule.package_id,
        "description": schedule.description,
        "device_id": schedule.device_id,
        "config_id": schedule.config_id,
        "options": schedule.options,
        "context": dict(schedule.context),
        "priority": schedule.priority,
        "cron": schedule.timing.cron,
        "interval_seconds": schedule.timing.interval_seconds,
        "timezone": schedule.timing.timezone,
        "misfire": schedule.misfire,
        "skip_if_running": schedule.skip_if_running,
        "paused": schedule.paused,
    }


def _checked(conn: Connection, definition: Definition, *, tenant_id: int, now: datetime) -> None:
    """Refuse what could never fire or never launch: a bad timing, or a launch the package,
    device, config and options would refuse (checked now, not at the first fire)."""
    definition.timing(now).check()
    jobs.check_launch(conn, definition.launch(), tenant_id=tenant_id)


def _row(definition: Definition, *, next_run: datetime | None, now: datetime) -> dict[str, Any]:
    values = definition.values
    return {
        "name": definition.name,
        "package_id": definition.package_id,
        "description": values["description"],
        "device_id": values["device_id"] or None,
        "config_id": values["config_id"] or None,
        "options": job_store.options_to_json(values["options"]),
        "context": dict(values["context"]),
        "priority": values["priority"],
        "cron": values["cron"],
        "interval_seconds": values["interval_seconds"],
        "timezone": values["timezone"],
        "misfire": Misfire(values["misfire"]).value,
        "skip_if_running": values["skip_if_running"],
        "paused": values["paused"],
        "next_run": next_run,
        "updated": now,
    }


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _next_run(definition: Definition, now: datetime) -> datetime | None:
    """A schedule started (or resumed, or retimed) now fires next after now; paused, never."""
    if definition.values["paused"]:
        return None
    anchor = _whole_second(now)
    return definition.timing(anchor).after(now)


def create_schedule(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Schedule:
    require(actor, Scope.JOBS_WRITE)
    definition = _definition(_given(values))
    now = utcnow()
    with rt.db.transaction() as conn:
        _checked(conn, definition, tenant_id=actor.tenant_id, now=now)
        row = _row(definition, next_run=_next_run(definition, now), now=now)
        row |= {"tenant_id": actor.tenant_id, "user_id": actor.user_id, "created": now}
        schedule_id = catalog.insert_row(conn, tables.schedules, row)
        audit.record(conn, actor, "schedule.create", "schedule", [schedule_id])
        created = schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)
    rt.schedule_changes.notify()
    return created


def edit_schedule(
    rt: Runtime, *, actor: Principal, schedule_id: int, values: Mapping[str, Any]
) -> Schedule:
    """Change a schedule; a new timing, or a resume, counts from now."""
    require(actor, Scope.JOBS_WRITE)
    given = _given(values)
    now = utcnow()
    with rt.db.transaction() as conn:
        before = schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)
        old = _of(before)
        definition = _definition(old | given)
        _checked(conn, definition, tenant_id=actor.tenant_id, now=now)
        retimed = any(old[key] != definition.values[key] for key in TIMING_FIELDS)
        resumed = before.paused and not definition.values["paused"]
        next_run = before.next_run
        if definition.values["paused"]:
            next_run = None
        elif retimed or resumed or next_run is None:
            next_run = _next_run(definition, now)
        row = _row(definition, next_run=next_run, now=now)
        catalog.update_row(conn, tables.schedules, schedule_id, row, tenant_id=actor.tenant_id)
        audit.record(
            conn, actor, _edit_action(before.paused, definition), "schedule", [schedule_id]
        )
        edited = schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)
    rt.schedule_changes.notify()
    return edited


def _edit_action(was_paused: bool, definition: Definition) -> str:
    paused = bool(definition.values["paused"])
    if paused != was_paused:
        return "schedule.pause" if paused else "schedule.resume"
    return "schedule.edit"


def pause_schedule(rt: Runtime, *, actor: Principal, schedule_id: int) -> Schedule:
    return edit_schedule(rt, actor=actor, schedule_id=schedule_id, values={"paused": True})


def resume_schedule(rt: Runtime, *, actor: Principal, schedule_id: int) -> Schedule:
    return edit_schedule(rt, actor=actor, schedule_id=schedule_id, values={"paused": False})


def delete_schedule(rt: Runtime, *, actor: Principal, schedule_id: int) -> None:
    """Delete a schedule and its fire times; the jobs it launched stay."""
    require(actor, Scope.JOBS_WRITE)
    with rt.db.transaction() as conn:
        schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)
        schedule_store.delete_schedule(conn, schedule_id)
        audit.record(conn, actor, "schedule.delete", "schedule", [schedule_id])
    rt.schedule_changes.notify()


def get_schedule(rt: Runtime, *, actor: Principal, schedule_id: int) -> Schedule:
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        return schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)


def list_schedules(
    rt: Runtime, *, actor: Principal, request: Listing
) -> tuple[list[Schedule], int]:
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        return schedule_store.list_schedules(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)


def list_fires(
    rt: Runtime, *, actor: Principal, schedule_id: int, page: PageRequest
) -> tuple[list[Fire], int]:
    """A schedule's fire times, newest first: the jobs it launched, and the fires it skipped."""
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        schedule_store.get_schedule(conn, schedule_id, tenant_id=actor.tenant_id)
        return schedule_store.list_fires(conn, schedule_id, offset=page.offset, limit=page.limit)


# Firing ------------------------------------------------------------------------------------


def fire_due(rt: Runtime, *, now: datetime | None = None) -> int:
    """Fire every schedule due by `now` (by default, now): return how many jobs launched."""
    moment = now or utcnow()
    launched = 0
    while True:
        with rt.db.transaction() as conn:
            due = schedule_store.take_due(conn, now=moment, limit=FIRE_BATCH, pg=rt.pg)
            for schedule in due:
                launched += _fire(rt, conn, schedule, moment)
        if len(due) < FIRE_BATCH:
            break
    if launched:
        rt.wakeup.notify()
    return launched


def seconds_until_due(rt: Runtime) -> float | None:
    """How long until the next schedule of any tenant is due (None: none is)."""
    with rt.db.read() as conn:
        earliest = schedule_store.earliest_next_run(conn)
    if earliest is None:
        return None
    return max(0.0, (earliest - utcnow()).total_seconds())


def _fire(rt: Runtime, conn: Connection, schedule: Schedule, now: datetime) -> int:
    """Launch for the schedule's fire time (once: see the module's docstring) and move its
    next run on; 1 when a job was launched here."""
    if schedule.next_run is None:
        return 0
    plan = rules.plan(
        schedule.timing,
        next_run=schedule.next_run,
        now=now,
        misfire=schedule.misfire,
        grace=rt.settings.schedule_misfire_grace_seconds,
    )
    values: dict[str, Any] = {"next_run": plan.next_run}
    launched = 0
    fire_time = plan.fire_time
    if fire_time is not None and schedule_store.claim_fire(
        conn, schedule_id=schedule.id, fire_time=fire_time, at=now
    ):
        outcome, job_id, note = _launch(rt, conn, schedule, fire_time)
        schedule_store.record_fire(
            conn,
            schedule_id=schedule.id,
            fire_time=fire_time,
            outcome=outcome,
            job_id=job_id,
            note=note,
        )
        values["last_fire_time"] = fire_time
        if job_id is not None:
            values["last_job_id"] = job_id
            launched = 1
    schedule_store.update_schedule(conn, schedule.id, values)
    return launched


ACTIVE = frozenset({JobStatus.PENDING.value, JobStatus.RUNNING.value})


def _launch(
    rt: Runtime, conn: Connection, schedule: Schedule, fire_time: datetime
) -> tuple[FireOutcome, int | None, str]:
    if schedule.skip_if_running and schedule.last_job_id is not None:
        status = schedule_store.job_status(conn, schedule.last_job_id)
        if status in ACTIVE:
            return FireOutcome.SKIPPED_RUNNING, None, f"job {schedule.last_job_id} was {status}"
    definition = _definition(_of(schedule))
    try:
        job = jobs.launch_scheduled(
            rt,
            conn,
            definition.launch(run_at=fire_time),
            owner=_owner(schedule),
            schedule_id=schedule.id,
        )
    except JobyardError as refused:  # the package, device or config changed since
        return FireOutcome.REFUSED, None, refused.message
    return FireOutcome.LAUNCHED, job.id, ""


def _owner(schedule: Schedule) -> Principal:
    """Whom a schedule's jobs are launched for: the user who defined it, in its customer."""
    return Principal(
        user_id=schedule.user_id,
        login="",
        role=Role.OPERATOR,
        home_tenant_id=schedule.tenant_id,
        tenant_id=schedule.tenant_id,
        scopes=frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE}),
    )
