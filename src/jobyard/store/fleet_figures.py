"""What `/metrics` reads from the database, the same whichever process answers: jobs by
customer and status (from the trigger-kept `job_counts`), live jobs by package, the queue's
depth and oldest due job, and the fleet's slots. Each is one indexed query; none counts the
finished jobs one by one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from jobyard.domain.statuses import JobStatus, RunStatus
from jobyard.store import tables

J = tables.jobs
LIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class FleetFigures:
    jobs: list[tuple[int, str, int]]  # (customer id, status, jobs)
    # (customer id, package id (0: deleted), package name, status, jobs)
    live_by_package: list[tuple[int, int, str, str, int]]
    queue_depth: int  # pending jobs that are due
    oldest_due: datetime | None  # the run_at of the longest-waiting due job
    slots_total: int  # of the workers that have not stopped
    slots_busy: int  # runs running


def _live_by_package() -> Any:
    """Pending and running jobs counted by customer, package and status through the status
    index (SQLite's planner would rather walk a whole (customer, package) index for the
    grouping: 1.7 s at a million jobs, against 0.15 s), then named."""
    package_id = func.coalesce(J.c.package_id, 0).label("package_id")
    counted = (
        select(J.c.tenant_id, package_id, J.c.status, func.count().label("n"))
        .with_hint(J, "INDEXED BY ix_jobs_status", "sqlite")
        .where(J.c.status.in_(LIVE))
        .group_by(J.c.tenant_id, package_id, J.c.status)
        .subquery()
    )
    packages = tables.packages
    return select(
        counted.c.tenant_id,
        counted.c.package_id,
        func.coalesce(packages.c.name, ""),
        counted.c.status,
        counted.c.n,
    ).select_from(counted.outerjoin(packages, packages.c.id == counted.c.package_id))


_LIVE_BY_PACKAGE = _live_by_package()


def read_fleet_figures(conn: Connection, now: datetime) -> FleetFigures:
    counts = tables.job_counts
    by_status = conn.execute(
        select(counts.c.tenant_id, counts.c.status, func.sum(counts.c.n))
        .group_by(counts.c.tenant_id, counts.c.status)
        .order_by(counts.c.tenant_id, counts.c.status)
    )
    live = conn.execute(_LIVE_BY_PACKAGE)
    due = conn.execute(
        select(func.count(), func.min(J.c.run_at)).where(
            J.c.status == JobStatus.PENDING.value, J.c.run_at <= now
        )
    ).one()
    workers = tables.workers
    slots = conn.execute(
        select(func.coalesce(func.sum(workers.c.slots), 0)).where(workers.c.stopped.is_(None))
    ).scalar_one()
    runs = tables.runs
    busy = conn.execute(
        select(func.count()).where(runs.c.status == RunStatus.RUNNING.value)
    ).scalar_one()
    return FleetFigures(
        jobs=[(int(t), str(s), int(n)) for t, s, n in by_status if n],
        live_by_package=[(int(t), int(i), str(p), str(s), int(n)) for t, i, p, s, n in live],
        queue_depth=int(due[0]),
        oldest_due=due[1],
        slots_total=int(slots),
        slots_busy=int(busy),
    )
