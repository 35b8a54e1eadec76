"""Retention in the database: the customers' and packages' policies, the finished jobs and
the output they let go (found in small batches along indexes), and deleting them.

Every selection here reads; the service deletes what it found in short write transactions of
their own, so that a sweep holds no lock while it looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.domain.retention import KEEP_ALL, Retention
from jobyard.domain.statuses import JobStatus
from jobyard.store import tables

J = tables.jobs
P = tables.packages
T = tables.tenants
R = tables.runs
OUT = tables.run_output
M = tables.retention_marks
FIELDS = tables.RETENTION_FIELDS


def _retention(row: Any) -> Retention:
    return Retention(**{name: getattr(row, name) for name in FIELDS})


def _values(retention: Retention) -> dict[str, int | None]:
    return {name: getattr(retention, name) for name in FIELDS}


def customer_retention(conn: Connection, tenant_id: int) -> Retention:
    row = conn.execute(select(*(T.c[n] for n in FIELDS)).where(T.c.id == tenant_id)).one()
    return _retention(row)


def set_customer_retention(conn: Connection, tenant_id: int, retention: Retention) -> None:
    conn.execute(update(T).where(T.c.id == tenant_id).values(**_values(retention)))
    forget_marks(conn, tenant_id)


def forget_marks(conn: Connection, tenant_id: int) -> None:
    """The customer's jobs are swept for output from the start again (its policies changed)."""
    conn.execute(delete(M).where(M.c.tenant_id == tenant_id))


@dataclass(frozen=True)
class Policies:
    """One customer's retention: its own, and each package's that has one, as it applies
    (the package's values over the customer's)."""

    tenant_id: int
    default: Retention
    packages: Mapping[int, Retention]

    def groups(self, name: str) -> list[tuple[int, ColumnElement[bool]]]:
        """For `keep_days` or `output_days`: each value that applies to some jobs, with the
        condition on a job's package that gives it that value."""
        own = {pid: getattr(policy, name) for pid, policy in self.packages.items()}
        default = getattr(self.default, name)
        found: list[tuple[int, ColumnElement[bool]]] = []
        for value in sorted({v for v in [default, *own.values()] if v is not None}):
            if value == default:
                others = [pid for pid, v in own.items() if v != value]
                found.append((value, or_(J.c.package_id.is_(None), J.c.package_id.not_in(others))))
            else:
                found.append((value, J.c.package_id.in_([p for p, v in own.items() if v == value])))
        return found


def all_policies(conn: Connection) -> list[Policies]:
    """Every customer that has a retention of its own or of one of its packages."""
    any_set = or_(*(T.c[n].is_not(None) for n in FIELDS))
    defaults = {
        row.id: _retention(row)
        for row in conn.execute(select(T.c.id, *(T.c[n] for n in FIELDS)).where(any_set))
    }
    packages: dict[int, dict[int, Retention]] = {}
    package_set = or_(*(P.c[n].is_not(None) for n in FIELDS))
    for row in conn.execute(
        select(P.c.id, P.c.tenant_id, *(P.c[n] for n in FIELDS)).where(package_set)
    ):
        packages.setdefault(row.tenant_id, {})[row.id] = _retention(row)
    tenants = sorted(set(defaults) | set(packages))
    return [_policies(t, defaults.get(t, KEEP_ALL), packages.get(t, {})) for t in tenants]


def policies_of(conn: Connection, tenant_id: int) -> Policies:
    default = customer_retention(conn, tenant_id)
    package_set = or_(*(P.c[n].is_not(None) for n in FIELDS))
    rows = conn.execute(
        select(P.c.id, *(P.c[n] for n in FIELDS)).where(P.c.tenant_id == tenant_id, package_set)
    )
    return _policies(tenant_id, default, {row.id: _retention(row) for row in rows})


def _policies(tenant_id: int, default: Retention, own: Mapping[int, Retention]) -> Policies:
    return Policies(tenant_id, default, {pid: p.over(default) for pid, p in own.items()})


def _finished(tenant_id: int) -> ColumnElement[bool]:
    return and_(
        J.c.tenant_id == tenant_id,
        J.c.finished.is_not(None),
        J.c.status != JobStatus.RUNNING.value,
    )


def expired_job_ids(
    conn: Connection, policies: Policies, *, now: datetime, limit: int
) -> list[int]:
    """Up to `limit` finished jobs older than their `keep_days`, oldest first (along the
    customer's (finished, id) index)."""
    found: list[int] = []
    for days, packages in policies.groups("keep_days"):
        query = (
            select(J.c.id)
            .where(
                _finished(policies.tenant_id), J.c.finished < now - timedelta(days=days), packages
            )
            .order_by(J.c.finished, J.c.id)
            .limit(limit - len(found))
        )
        found += conn.execute(query).scalars()
        if len(found) >= limit:
            break
    return found


def _keep_last_packages(conn: Connection, policies: Policies) -> list[tuple[int, int]]:
    """Each package of the customer whose `keep_last` is set, with it."""
    own = {pid: p.keep_last for pid, p in policies.packages.items()}
    chosen = [(pid, n) for pid, n in own.items() if n is not None]
    default = policies.default.keep_last
    if default is not None:
        others = select(P.c.id).where(P.c.tenant_id == policies.tenant_id, P.c.id.not_in(list(own)))
        chosen += [(pid, default) for pid in conn.execute(others).scalars()]
    return sorted(chosen)


def surplus_job_ids(conn: Connection, policies: Policies, *, limit: int) -> list[int]:
    """Up to `limit` finished jobs beyond the `keep_last` newest of their package (along the
    customer's (package, id) index, newest first, past the ones kept)."""
    found: list[int] = []
    for package_id, keep in _keep_last_packages(conn, policies):
        query = (
            select(J.c.id)
            .where(_finished(policies.tenant_id), J.c.package_id == package_id)
            .order_by(J.c.id.desc())
            .offset(keep)
            .limit(limit - len(found))
        )
        found += conn.execute(query).scalars()
        if len(found) >= limit:
            break
    return found


def delete_jobs(conn: Connection, job_ids: Sequence[int]) -> int:
    """Delete finished jobs (never a running one); their runs, output, events, results and
    tags go with them (ON DELETE CASCADE)."""
    if not job_ids:
        return 0
    result = conn.execute(
        delete(J).where(J.c.id.in_(job_ids), J.c.finished.is_not(None), J.c.status != "running")
    )
    return int(result.rowcount)


@dataclass(frozen=True)
class OutputBatch:
    """Finished jobs whose output is due, and how far that takes the value's mark."""

    output_days: int
    job_ids: list[int]
    last: tuple[datetime, int] | None


def output_due(
    conn: Connection, policies: Policies, *, now: datetime, limit: int
) -> list[OutputBatch]:
    """For each `output_days` value of the customer, up to `limit` finished jobs past it,
    after its mark, in order of their end."""
    marks = {
        row.output_days: (row.finished, row.job_id)
        for row in conn.execute(select(M).where(M.c.tenant_id == policies.tenant_id))
    }
    batches = []
    for days, packages in policies.groups("output_days"):
        after: ColumnElement[bool] = true()
        if days in marks:
            finished, job_id = marks[days]
            after = or_(J.c.finished > finished, and_(J.c.finished == finished, J.c.id > job_id))
        rows = conn.execute(
            select(J.c.id, J.c.finished)
            .where(
                _finished(policies.tenant_id),
                J.c.finished < now - timedelta(days=days),
                packages,
                after,
            )
            .order_by(J.c.finished, J.c.id)
            .limit(limit)
        ).all()
        if rows:
            batches.append(
                OutputBatch(days, [r.id for r in rows], (rows[-1].finished, rows[-1].id))
            )
    return batches


def delete_output(conn: Connection, batch: OutputBatch, *, tenant_id: int) -> int:
    """Delete the output of the batch's jobs' runs and move the mark on; return the chunks
    deleted."""
    runs = select(R.c.id).where(R.c.job_id.in_(batch.job_ids))
    deleted = int(conn.execute(delete(OUT).where(OUT.c.run_id.in_(runs))).rowcount)
    if batch.last is not None:
        finished, job_id = batch.last
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        mark = dialect.insert(M).values(
            tenant_id=tenant_id, output_days=batch.output_days, finished=finished, job_id=job_id
        )
        # Two processes sweeping the same customer both move its mark: the later write wins,
        # and at worst a batch's output is looked at again.
        conn.execute(
            mark.on_conflict_do_update(
                index_elements=[M.c.tenant_id, M.c.output_days],
                set_={"finished": mark.excluded.finished, "job_id": mark.excluded.job_id},
            )
        )
    return deleted


def preview(conn: Connection, policies: Policies, *, now: datetime) -> list[dict[str, Any]]:
    """What a sweep would delete now, by package: jobs, and output chunks of jobs that stay."""
    goes: ColumnElement[bool] = false()
    for days, packages in policies.groups("keep_days"):
        goes = or_(goes, and_(J.c.finished < now - timedelta(days=days), packages))
    for package_id, keep in _keep_last_packages(conn, policies):
        newest_kept = (
            select(J.c.id)
            .where(_finished(policies.tenant_id), J.c.package_id == package_id)
            .order_by(J.c.id.desc())
            .offset(max(keep - 1, 0))
            .limit(1)
            .scalar_subquery()
        )
        below = J.c.id < newest_kept if keep else true()
        goes = or_(goes, and_(J.c.package_id == package_id, below))
    output_goes: ColumnElement[bool] = false()
    for days, packages in policies.groups("output_days"):
        output_goes = or_(output_goes, and_(J.c.finished < now - timedelta(days=days), packages))
    chunks = (
        select(func.count())
        .select_from(OUT)
        .join(R, R.c.id == OUT.c.run_id)
        .where(R.c.job_id == J.c.id)
        .scalar_subquery()
    )
    jobs_gone = func.sum(case((goes, 1), else_=0))
    output_gone = func.sum(case((and_(output_goes, not_(goes)), chunks), else_=0))
    rows = conn.execute(
        select(
            J.c.package_id, J.c.package_name, jobs_gone.label("jobs"), output_gone.label("chunks")
        )
        .where(_finished(policies.tenant_id), or_(goes, output_goes))
        .group_by(J.c.package_id, J.c.package_name)
        .order_by(J.c.package_name)
    )
    return [
        {
            "package_id": row.package_id,
            "package_name": row.package_name,
            "jobs": int(row.jobs or 0),
            "output_chunks": int(row.chunks or 0),
        }
        for row in rows
    ]
