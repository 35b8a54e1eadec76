"""A customer's jobs that hold some tags, all of them, read from the tables that triggers keep
beside the jobs (migration 0018) instead of each job's JSON array of tags.

One tag's jobs are one range of `job_tags`' (tenant, tag, job_id) index, or of its (tenant,
tag, created, job_id) one; the jobs of two tags are one range of `job_tag_pairs`' indexes
of the same shapes, and a third tag or more is checked for each of those by its (job, tag)
key. So a list filtered by tags alone, in id or creation order, walks an index for its page
and counts one range for its total; with other filters too, it walks the same index and
reads each row's job to test them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, exists, func, select

from jobyard.domain.paging import PageRequest, nearer_slice
from jobyard.store import listing, tables

J = tables.jobs
T = tables.job_tags
P = tables.job_tag_pairs


@dataclass(frozen=True)
class Tagged:
    """The rows that stand for a customer's jobs of some tags: their table (`job_tags` or
    `job_tag_pairs`, each with its job's id and creation), the conditions that pick them (an
    index range first), and any conditions on their jobs (other filters of the list), which
    join each row to its job."""

    source: Table
    where: tuple[ColumnElement[bool], ...]
    jobs_where: tuple[ColumnElement[bool], ...] = ()

    @property
    def job_id(self) -> ColumnElement[Any]:
        return self.source.c.job_id

    @property
    def created(self) -> ColumnElement[Any]:
        return self.source.c.created

    def among_jobs(self, conditions: Sequence[ColumnElement[bool]]) -> Tagged:
        """The same rows, of the jobs that also meet `conditions`."""
        return replace(self, jobs_where=(*self.jobs_where, *conditions))

    def _rows(self, *columns: ColumnElement[Any]) -> Select[Any]:
        if not self.jobs_where:
            return select(*columns).where(*self.where)
        joined = self.source.join(J, J.c.id == self.job_id)
        return select(*columns).select_from(joined).where(*self.where, *self.jobs_where)

    def ids(self) -> Select[Any]:
        """The jobs' ids, in no order."""
        return self._rows(self.job_id)

    def count(self) -> Select[Any]:
        return self._rows(func.count())

    def page_ids(
        self, page: PageRequest, total: int, *, by_created: bool, descending: bool
    ) -> Select[Any]:
        """One page of the jobs' ids, in id or creation order (ties by id), either way: a walk
        along the rows' index from whichever end of the `total` rows is nearer, each row's
        job read only where other conditions ask for it. The ids come in no set order."""
        keys = (self.created, self.job_id) if by_created else (self.job_id,)
        nearer = nearer_slice(page, total)
        if nearer is not None and nearer.backwards:
            descending = not descending
        query = self.ids().order_by(*(listing.directed(key, descending) for key in keys))
        if nearer is not None:
            query = query.limit(nearer.limit).offset(nearer.offset)
        return query


def holding(tenant_id: int, tags: Sequence[str]) -> Tagged:
    """The customer's jobs that hold every one of `tags` (at least one)."""
    first, *rest = sorted(set(tags))  # code point order, as the pairs' rows are written
    if not rest:
        return Tagged(T, (T.c.tenant_id == tenant_id, T.c.tag == first))
    second, *others = rest
    return Tagged(
        P,
        (
            P.c.tenant_id == tenant_id,
            P.c.first_tag == first,
            P.c.second_tag == second,
            *(_also_held(P.c.job_id, tag) for tag in others),
        ),
    )


def _also_held(job_id: ColumnElement[Any], tag: str) -> ColumnElement[bool]:
    held = T.alias()
    return exists().where(held.c.job_id == job_id, held.c.tag == tag)
