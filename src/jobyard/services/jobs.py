"""Use cases on jobs: launch (one or many), edit, cancel, delete, list, and what they would use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import idempotency as idempotency_rules
from jobyard.domain import launching, vocabulary
from jobyard.domain.idempotency import Idempotency
from jobyard.domain.launching import ResolvedLaunch
from jobyard.domain.listing import Listing
from jobyard.domain.models import (
    Config,
    Device,
    Interface,
    Job,
    JobEvent,
    JobOptions,
    Package,
    PackageKind,
)
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import Principal, Scope, require, require_on_job
from jobyard.domain.statuses import JobStatus
from jobyard.errors import Conflict, JobyardError, NotFound, RuleViolation, ValidationFailed
from jobyard.repeats import map_shared
from jobyard.services import audit, outcomes
from jobyard.services.remembered import Remembered
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, job_events, notify, tables, transitions
from jobyard.store import idempotency as idempotency_store
from jobyard.store import jobs as job_store
from jobyard.store.driver import DriverStatements
from jobyard.store.key_reads import KeyReads

logger = logging.getLogger(__name__)

MAX_BULK_LAUNCH = 100_000


@dataclass(frozen=True)
class LaunchRequest:
    """One launch: `device_id`/`config_id` None mean the package's own."""

    package_id: int
    device_id: int | None = None
    config_id: int | None = None
    options: JobOptions = field(default_factory=JobOptions)
    run_at: datetime | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True)
class JobEdit:
    """A PATCH: None leaves a field as it is; 0 for device/config means the package's own."""

    package_id: int | None = None
    device_id: int | None = None
    config_id: int | None = None
    options: JobOptions | None = None
    run_at: datetime | None = None
    priority: int | None = None


class _Lookups:
    """Packages, configs and devices read once per transaction, for bulk launches; and what
    launches of them resolve to, remembered across transactions where the runtime does so
    (see `services/remembered.py`), under the catalog's epoch read in this transaction."""

    def __init__(
        self,
        conn: Connection | KeyReads,
        tenant_id: int,
        *,
        remembered: Remembered[Hashable, ResolvedLaunch] | None = None,
    ) -> None:
        self.conn = conn
        self.tenant_id = tenant_id
        self._packages: dict[int, Package] = {}
        self._configs: dict[int, Config] = {}
        self._devices: dict[int, Device] = {}
        self._resolved: dict[tuple[int, int | None, int | None, JobOptions], ResolvedLaunch] = {}
        self._remembered = remembered
        self._epoch: int | None = None

    def resolve(self, request: LaunchRequest) -> ResolvedLaunch:
        """`_resolve`, once per package, device, config and options: a bulk launch mostly
        repeats one of them, and planning it (variables, templates) is the per-job cost."""
        key = (request.package_id, request.device_id, request.config_id, request.options)
        if key not in self._resolved:
            self._resolved[key] = self._remembered_or_resolved(request, key)
        return self._resolved[key]

    def _remembered_or_resolved(
        self, request: LaunchRequest, key: tuple[Any, ...]
    ) -> ResolvedLaunch:
        if self._remembered is None:
            return _resolve(self, request)
        if self._epoch is None:  # once per transaction, before any of its rows
            self._epoch = self._remembered.epoch(self.conn)
        with_tenant = (self.tenant_id, *key)
        return self._remembered.through(self._epoch, with_tenant, lambda: _resolve(self, request))

    def package(self, package_id: int) -> Package:
        if package_id not in self._packages:
            self._packages[package_id] = catalog.get_package(
                self.conn, package_id, tenant_id=self.tenant_id
            )
        return self._packages[package_id]

    def config(self, config_id: int | None) -> Config | None:
        if config_id is None:
            return None
        if config_id not in self._configs:
            self._configs[config_id] = catalog.get_config(
                self.conn, config_id, tenant_id=self.tenant_id
            )
        return self._configs[config_id]

    def device(self, device_id: int | None) -> Device | None:
        if device_id is None:
            return None
        if device_id not in self._devices:
            self._devices[device_id] = catalog.get_device(
                self.conn, device_id, tenant_id=self.tenant_id
            )
        return self._devices[device_id]


def _resolve(lookups: _Lookups, request: LaunchRequest) -> ResolvedLaunch:
    """Everything a launch needs, checked: unknown ids and bad templates fail here."""
    package = lookups.package(request.package_id)
    device = lookups.device(request.device_id or package.device_id)
    package_config = lookups.config(package.config_id)
    job_config = lookups.config(request.config_id) if request.config_id else None
    config = job_config or package_config
    builtins = {
        "package_name": package.name,
        "device_name": device.name if device else "",
        "config_name": config.name if config else "",
    }
    variables, extra_args = launching.resolve_variables(
        builtins=builtins,
        device=device,
        package_config=package_config,
        job_config=job_config,
        options=request.options,
    )
    plan = launching.plan_launch(
        package=package,
        variables=variables,
        extra_args=extra_args,
        interface_config=config,
    )
    return ResolvedLaunch(package, device, config, plan)


def _job_row(
    request: LaunchRequest,
    resolved: ResolvedLaunch,
    *,
    now: datetime,
    actor: Principal,
    automatic: bool = False,
) -> dict[str, Any]:
    interfaces = resolved.plan.interfaces
    return {
        "tenant_id": actor.tenant_id,
        "status": JobStatus.PENDING.value,
        "package_id": resolved.package.id,
        "package_name": resolved.package.name,
        "kind": resolved.package.kind.value,
        "device_id": request.device_id or None,
        "device_name": resolved.device.name if resolved.device else "",
        "target_device_id": resolved.device.id if resolved.device else None,
        "config_id": request.config_id or None,
        "config_name": resolved.config.name if resolved.config else "",
        "target_config_id": resolved.config.id if resolved.config else None,
        "options": job_store.options_to_json(request.options),
        "tags": list(request.options.tags or ()),
        "context": dict(request.context),
        "argv": list(resolved.plan.argv),
        "env": dict(resolved.plan.env),
        "sandbox": dict(resolved.package.sandbox),
        "timeout_seconds": resolved.package.timeout_seconds,
        "interfaces": job_store.interfaces_to_json(interfaces),
        "interface_names": [i.value for i in interfaces],
        "priority": request.priority,
        "run_at": request.run_at or now,
        "user_id": actor.user_id,
        "automatic": automatic,
        "created": now,
        "updated": now,
    }


def _insert_launches(
    rt: Runtime, conn: Connection, requests: Sequence[LaunchRequest], *, actor: Principal
) -> list[Job]:
    # The launch writes jobs, never packages, configs or devices: they are read beside it.
    # A batch shares its own work (`_Lookups`): only a launch of one item is remembered, so
    # that a bulk launch of many different items does not crowd out what single ones reuse.
    one = rt.launches_resolved if len(requests) == 1 else None
    lookups = _Lookups(rt.db.key_reads_beside(conn), actor.tenant_id, remembered=one)
    now = utcnow()
    # The API's launch requests share one request for equal items.
    rows = map_shared(lambda r: _job_row(r, lookups.resolve(r), now=now, actor=actor), requests)
    jobs = job_store.insert_jobs(conn, rows, reason="launched")
    _audit_many(conn, actor, "launch", [job.id for job in jobs])
    return jobs


def launch_scheduled(
    rt: Runtime, conn: Connection, request: LaunchRequest, *, owner: Principal, schedule_id: int
) -> Job:
    """A schedule's launch, in the scheduler's transaction (the one that claims the fire
    time): marked automatic, launched on behalf of the schedule's owner, audited with the
    schedule. A refused launch raises before anything is written."""
    lookups = _Lookups(
        rt.db.key_reads_beside(conn), owner.tenant_id, remembered=rt.launches_resolved
    )
    row = _job_row(request, lookups.resolve(request), now=utcnow(), actor=owner, automatic=True)
    [job] = job_store.insert_jobs(conn, [row], reason=f"launched by schedule {schedule_id}")
    audit.record(conn, owner, "job.launch", "job", [job.id], detail={"schedule_id": schedule_id})
    notify.announce_work(conn)
    return job


def check_launch(conn: Connection, request: LaunchRequest, *, tenant_id: int) -> None:
    """Refuse a launch that could not be made (unknown ids, variables, arguments), without
    making it: what a schedule will launch is checked when it is defined."""
    _resolve(_Lookups(conn, tenant_id), request)


def _audit_many(conn: DriverStatements, actor: Principal, verb: str, ids: Sequence[int]) -> None:
    """One event per job for a single action; one event listing them for a bulk one."""
    if len(ids) == 1:
        audit.record(conn, actor, f"job.{verb}", "job", ids)
    elif ids:
        audit.record(conn, actor, f"job.bulk_{verb}", "job", [None], detail={"ids": list(ids)})


@dataclass(frozen=True)
class KeyedLaunch:
    """What a launch with an Idempotency-Key answers: its jobs, and whether they are those
    of an earlier request with the same key (`replayed`) rather than new ones."""

    jobs: list[Job]
    replayed: bool


Planned = Callable[
    [Connection], Sequence[LaunchRequest]
]  # the launches, planned in its transaction


def launch_keyed(
    rt: Runtime, *, actor: Principal, idempotency: Idempotency, plan: Planned
) -> KeyedLaunch:
    """A launch that happens once per key and customer within the key's window: the first
    request's transaction takes the key with its jobs; a retry with the same request (same
    fingerprint) answers those jobs and launches nothing, one with another request is a 422.
    A retry that comes while the first is still being written waits for it (PostgreSQL) or
    comes after it (SQLite's one writer). A refused launch takes no key."""
    require(actor, Scope.JOBS_WRITE)
    now = utcnow()
    with rt.db.transaction() as conn:
        taken = idempotency_store.take(
            conn,
            tenant_id=actor.tenant_id,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
            now=now,
            expired_before=now - idempotency_rules.WINDOW,
        )
        if not taken:
            return KeyedLaunch(_replay(conn, actor, idempotency), replayed=True)
        requests = plan(conn)
        if len(requests) > MAX_BULK_LAUNCH:
            raise ValidationFailed(f"at most {MAX_BULK_LAUNCH} jobs may be launched at once")
        launched = _insert_launches(rt, conn, requests, actor=actor)
        idempotency_store.record(
            conn,
            tenant_id=actor.tenant_id,
            key=idempotency.key,
            job_ids=[job.id for job in launched],
        )
        notify.announce_work(conn)
    rt.wakeup.notify()
    return KeyedLaunch(launched, replayed=False)


def _replay(conn: Connection, actor: Principal, idempotency: Idempotency) -> list[Job]:
    stored = idempotency_store.read(conn, tenant_id=actor.tenant_id, key=idempotency.key)
    if stored.fingerprint != idempotency.fingerprint:
        raise RuleViolation(
            f"this {idempotency_rules.HEADER} was used within "
            f"{idempotency_rules.WINDOW.total_seconds() / 3600:g} h with another request "
            "(another body, path or query): send a new key for a new request",
            field=idempotency_rules.HEADER,
        )
    return job_store.get_existing_jobs(conn, stored.job_ids)


def selected_packages(
    selection: Listing | None, template: LaunchRequest, *, tenant_id: int, pg: bool
) -> Planned:
    """The launches of `launch_for_packages`, planned in the launch's own transaction."""

    def plan(conn: Connection) -> list[LaunchRequest]:
        request = selection or Listing(page=PageRequest(page=1, limit=None))
        ids = catalog.select_ids(conn, tables.packages, request, tenant_id=tenant_id, pg=pg)
        return [replace(template, package_id=pid) for pid in ids]

    return plan


def launch_jobs(rt: Runtime, *, actor: Principal, requests: Sequence[LaunchRequest]) -> list[Job]:
    """Launch all of them or none: one bad request refuses the whole batch."""
    require(actor, Scope.JOBS_WRITE)
    if len(requests) > MAX_BULK_LAUNCH:
        raise ValidationFailed(f"at most {MAX_BULK_LAUNCH} jobs may be launched at once")
    with rt.db.transaction() as conn:
        jobs = _insert_launches(rt, conn, requests, actor=actor)
        notify.announce_work(conn)
    rt.wakeup.notify()
    return jobs


Launched = Job | JobyardError  # a launch's job, or why it was refused


def launch_job(rt: Runtime, *, actor: Principal, request: LaunchRequest) -> Job:
    [launched] = launch_each(rt, [(actor, request)])
    if isinstance(launched, JobyardError):
        raise launched
    return launched


def launch_each(rt: Runtime, launches: Sequence[tuple[Principal, LaunchRequest]]) -> list[Launched]:
    """Single launches of several callers, in one transaction (a group commit): each is
    judged alone, so one refused launch leaves the others be. An error of the database
    itself fails them all (nothing was written)."""
    now = utcnow()
    lookups: dict[int, _Lookups] = {}
    answers: list[Launched | dict[str, Any]] = []
    with rt.db.quick_transaction() as conn:
        for actor, request in launches:
            tenant = actor.tenant_id
            if tenant not in lookups:
                lookups[tenant] = _Lookups(
                    rt.db.key_reads_beside(conn), tenant, remembered=rt.launches_resolved
                )
            try:
                require(actor, Scope.JOBS_WRITE)
                row = _job_row(request, lookups[tenant].resolve(request), now=now, actor=actor)
            except JobyardError as refused:
                answers.append(refused)
            else:
                answers.append(row)
        rows = [answer for answer in answers if isinstance(answer, dict)]
        inserted = iter(job_store.insert_jobs(conn, rows, reason="launched"))
        results = [next(inserted) if isinstance(a, dict) else a for a in answers]
        for (actor, _), result in zip(launches, results, strict=True):
            if isinstance(result, Job):
                _audit_many(conn, actor, "launch", [result.id])
        if rows:
            notify.announce_work(conn)
    if rows:
        rt.wakeup.notify()
    return results


def launch_for_packages(
    rt: Runtime,
    *,
    actor: Principal,
    selection: Listing | None,
    template: LaunchRequest,
) -> list[Job]:
    """One job per package the selection matches (None = every package), from a template."""
    require(actor, Scope.JOBS_WRITE)
    plan = selected_packages(selection, template, tenant_id=actor.tenant_id, pg=rt.pg)
    with rt.db.read() as conn:
        requests = plan(conn)
    return launch_jobs(rt, actor=actor, requests=requests)


def job_interfaces(
    rt: Runtime, *, actor: Principal, request: LaunchRequest
) -> tuple[Interface, ...]:
    """The interfaces a launch would use, without launching anything."""
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        return _resolve(_Lookups(conn, actor.tenant_id), request).plan.interfaces


def get_job(rt: Runtime, *, actor: Principal, job_id: int) -> Job:
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read_key() as conn:
        return job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)


def list_jobs(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Job], int]:
    require(actor, Scope.JOBS_READ)
    with rt.db.read() as conn:
        return job_store.list_jobs(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)


def edit_job(rt: Runtime, *, actor: Principal, job_id: int, edit: JobEdit) -> Job:
    """Change what a pending job will run; its argv and interfaces are planned again."""
    require(actor, Scope.JOBS_WRITE)
    with rt.db.transaction() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        if job.status is not JobStatus.PENDING:
            raise Conflict(f"job {job_id} is {job.status}; only a pending job can be edited")
        request = LaunchRequest(
            package_id=edit.package_id or job.package_id,
            device_id=job.device_id if edit.device_id is None else edit.device_id or None,
            config_id=job.config_id if edit.config_id is None else edit.config_id or None,
            options=job.options if edit.options is None else edit.options,
            run_at=edit.run_at or job.run_at,
            context=job.context,
            priority=job.priority if edit.priority is None else edit.priority,
        )
        resolved = _resolve(_Lookups(conn, actor.tenant_id), request)
        row = _job_row(request, resolved, now=utcnow(), actor=actor)
        for key in ("tenant_id", "created", "user_id", "status", "automatic"):
            row.pop(key)
        job_store.update_job(conn, job_id, row)
        job_store.set_job_interfaces(conn, job_id, row["interface_names"])
        audit.record(conn, actor, "job.edit", "job", [job_id])
        notify.announce_work(conn)
        updated = job_store.get_job(conn, job_id)
    rt.wakeup.notify()
    return updated


def cancel_job(
    rt: Runtime, *, actor: Principal, job_id: int, only_pending: bool = False, reason: str = ""
) -> Job:
    """A pending job ends now; a running one is asked to stop and ends when its process does.
    With `only_pending` a started job is refused (BigChange cancels only jobs not started)."""
    require_on_job(actor, Scope.JOBS_WRITE, job_id)
    now = utcnow()
    with rt.db.transaction() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        if job.status.terminal:
            raise Conflict(f"job {job_id} has already ended ({job.status})")
        if only_pending and job.status is not JobStatus.PENDING:
            raise RuleViolation(
                f"job {job_id} is {job.status}: only a job not yet started can be cancelled",
                field="status",
            )
        if job.status is JobStatus.PENDING:
            transitions.transition(
                conn,
                job,
                JobStatus.CANCELLED,
                at=now,
                user_id=actor.user_id,
                reason=f"cancelled: {reason}" if reason else "cancelled",
                values={"finished": now},
            )
        elif job.kind is PackageKind.EXTERNAL:
            outcomes.cancel_external(conn, job, actor=actor)
        elif not job.cancel_requested:
            job_store.update_job(conn, job_id, {"cancel_requested": now, "updated": now})
        audit.record(conn, actor, "job.cancel", "job", [job_id])
        return job_store.get_job(conn, job_id)


def relaunch_job(rt: Runtime, *, actor: Principal, job_id: int) -> Job:
    """A new job with an old one's package, device, config, options, context and priority."""
    require(actor, Scope.JOBS_WRITE)
    with rt.db.read() as conn:
        old = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
    request = LaunchRequest(
        package_id=old.package_id,
        device_id=old.device_id,
        config_id=old.config_id,
        options=old.options,
        context=old.context,
        priority=old.priority,
    )
    return launch_job(rt, actor=actor, request=request)


def delete_job(rt: Runtime, *, actor: Principal, job_id: int) -> None:
    require(actor, Scope.JOBS_WRITE)
    with rt.db.transaction() as conn:
        job = job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        if job.status is JobStatus.RUNNING:
            raise Conflict(f"job {job_id} is running; cancel it before deleting it")
        job_store.delete_jobs(conn, [job_id])
        audit.record(conn, actor, "job.delete", "job", [job_id])


def delete_jobs(
    rt: Runtime,
    *,
    actor: Principal,
    job_ids: Sequence[int] | None = None,
    selection: Listing | None = None,
) -> int:
    """Delete the given or selected jobs of the tenant, except running ones; return how many.

    Given ids the tenant has no job of are a 404 that lists them, and nothing is deleted, as
    a single delete of such an id is a 404."""
    require(actor, Scope.JOBS_WRITE)
    with rt.db.transaction() as conn:
        if job_ids is None:
            if selection is None:
                raise ValidationFailed("say which jobs to delete")
            job_ids = job_store.select_job_ids(conn, selection, tenant_id=actor.tenant_id, pg=rt.pg)
        else:
            _refuse_missing(conn, job_ids, tenant_id=actor.tenant_id)
        chosen = job_store.deletable_job_ids(conn, job_ids, tenant_id=actor.tenant_id)
        deleted = job_store.delete_jobs(conn, chosen)
        _audit_many(conn, actor, "delete", chosen)
        return deleted


MAX_IDS_NAMED = 20  # in the message; `not_found` lists every one


def _refuse_missing(conn: Connection, job_ids: Sequence[int], *, tenant_id: int) -> None:
    found = job_store.existing_job_ids(conn, job_ids, tenant_id=tenant_id)
    missing = tuple(dict.fromkeys(i for i in job_ids if i not in found))
    if missing:
        named = ", ".join(str(i) for i in missing[:MAX_IDS_NAMED])
        more = f" and {len(missing) - MAX_IDS_NAMED} more" if len(missing) > MAX_IDS_NAMED else ""
        raise NotFound(f"{vocabulary.NO_SUCH_JOB}: {named}{more}; nothing was deleted", ids=missing)


def list_job_events(rt: Runtime, *, actor: Principal, job_id: int) -> list[JobEvent]:
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        return job_events.list_events(conn, job_id)
