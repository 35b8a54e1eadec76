"""The worker fleet as admins see it: who is alive, with how many slots, running what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from jobyard.domain.permissions import Principal, Scope, require
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import fleet
from jobyard.store.fleet import WorkerRecord


@dataclass(frozen=True)
class WorkerView:
    worker: WorkerRecord
    running_job_ids: list[int]  # of the caller's tenant (all of them for system admins)


def list_workers(rt: Runtime, *, actor: Principal, include_stopped: bool) -> list[WorkerView]:
    require(actor, Scope.ADMIN)
    tenant = None if actor.is_system_admin else actor.tenant_id
    # A live worker beats every third of a lease: silent for a lease, it is dead or frozen.
    heard_since = utcnow() - timedelta(seconds=rt.settings.lease_seconds)
    with rt.db.read() as conn:
        found = fleet.list_workers(conn, include_stopped=include_stopped, heard_since=heard_since)
        running = fleet.running_jobs_by_worker(conn, tenant_id=tenant)
    return [WorkerView(w, sorted(running.get(w.id, []))) for w in found]
