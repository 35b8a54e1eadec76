"""What the dashboard's overview shows: a customer's jobs by status, and launches and
failures hour by hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobyard.domain.permissions import Principal, Scope, require
from jobyard.domain.statuses import JobStatus
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import stats

# Ended without success, for the failures over time.
FAILURES = (JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.LOST)


@dataclass(frozen=True)
class Hour:
    start: datetime
    launched: int
    failed: int


@dataclass(frozen=True)
class Overview:
    by_status: dict[str, int]
    hours: list[Hour]  # oldest first, the current hour last

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def overview(rt: Runtime, *, actor: Principal, hours: int = 24) -> Overview:
    require(actor, Scope.JOBS_READ)
    now = utcnow()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    with rt.db.read() as conn:
        by_status = stats.counts_by_status(conn, actor.tenant_id)
        launched = stats.launched_by_hour(conn, actor.tenant_id, first)
        failed = stats.ended_by_hour(conn, actor.tenant_id, first, [s.value for s in FAILURES])
    starts = [first + timedelta(hours=n) for n in range(hours)]
    return Overview(
        {s.value: by_status.get(s.value, 0) for s in JobStatus},
        [Hour(start, launched.get(start, 0), failed.get(start, 0)) for start in starts],
    )
