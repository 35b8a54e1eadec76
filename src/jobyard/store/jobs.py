"""Jobs in the database: inserted one or many at once, read, listed, updated and deleted; their
appended results. Status writes are store/transitions.py's; status history is job_events.py's."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from jobyard.domain import vocabulary
from jobyard.domain.filters import Combine, FieldKind, Filter, Op, SortKey, typed_value
from jobyard.domain.listing import Listing
from jobyard.domain.models import (
    Interface,
    Job,
    JobOptions,
    PackageKind,
    Testvar,
    evolve,
)
from jobyard.domain.outcomes import Outcome, OutcomeStatus
from jobyard.domain.statuses import JobStatus
from jobyard.errors import NotFound
from jobyard.repeats import map_shared
from jobyard.store import (
    created_range,
    ended_range,
    job_events,
    listing,
    segmented,
    shadowed,
    source_counts,
    tables,
)
from jobyard.store.catalog import interface_from_json, interface_to_json
from jobyard.store.driver import DriverStatements, RowsInsert
from jobyard.store.key_reads import KeyReads, KeyRow
from jobyard.store.tagged import Tagged, holding
from jobyard.store.types import in_ids

J = tables.jobs
T = tables.job_tags
_RUNNING = J.c.status == JobStatus.RUNNING.value
OPTIONS = ("begin_at", "end_at", "extra_cli_args")
_OPTIONS = {name: tables.job_option(name) for name in OPTIONS}


def _id_or_zero_equals(column: ColumnElement[Any]) -> listing.IndexedCondition:
    """`coalesce(column, 0) = v` (or one of several) as the (tenant, column, id) index
    answers it."""

    def condition(op: Op, value: Any) -> Any:
        if op is Op.CONTAINED_BY:  # one of a set of ids
            given = [v for v in value if v != 0]
            found = column.in_(given)
            return or_(found, column.is_(None)) if len(given) < len(value) else found
        if op is not Op.EQ:
            return None
        return column.is_(None) if value == 0 else column == value

    return condition


def _tags_held(tenant_id: int) -> listing.IndexedCondition:
    """Tag containment and overlap through `job_tags` and `job_tag_pairs` (store/tagged.py),
    whose indexes hold each tag's (and pair of tags') jobs of a customer, instead of reading
    every job's JSON array."""
    tagged = select(T.c.job_id).where(T.c.tenant_id == tenant_id)

    def held(op: Op, values: tuple[str, ...]) -> Any:
        if op is Op.CONTAINS and values:
            return J.c.id.in_(holding(tenant_id, values).ids())
        if op is Op.OVERLAPS:
            return J.c.id.in_(tagged.where(T.c.tag.in_(values))) if values else false()
        return None

    return held


JOB_FIELDS = listing.fields(
    vocabulary.JOB_FIELDS,
    {
        "id": J.c.id,
        "status": J.c.status,
        "active": _RUNNING,
        "package_id": func.coalesce(J.c.package_id, 0),
        "package_name": J.c.package_name,
        # A job's device_id and config_id are those it runs with, as the API shows them.
        "device_id": func.coalesce(J.c.target_device_id, 0),
        "device_name": J.c.device_name,
        "target_device_id": func.coalesce(J.c.target_device_id, 0),
        "config_id": func.coalesce(J.c.target_config_id, 0),
        "config_name": J.c.config_name,
        "result_id": J.c.current_run_id,
        "user_id": J.c.user_id,
        "created": J.c.created,
        "updated": J.c.updated,
        "run_at": J.c.run_at,
        "started": J.c.started,
        "finished": J.c.finished,
        "automatic": J.c.automatic,
        "priority": J.c.priority,
        "exit_code": J.c.exit_code,
        "kind": J.c.kind,
        "tags": J.c.tags,
        "options.tags": J.c.tags,
        "interface_names": J.c.interface_names,
        **{f"options.{name}": column for name, column in _OPTIONS.items()},
        **_OPTIONS,
    },
    indexed={
        "package_id": _id_or_zero_equals(J.c.package_id),
        "device_id": _id_or_zero_equals(J.c.target_device_id),
        "target_device_id": _id_or_zero_equals(J.c.target_device_id),
    },
    nulls_first_sorts={
        "package_id": J.c.package_id,
        "device_id": J.c.target_device_id,
        "target_device_id": J.c.target_device_id,
    },
    selective=("package_id", "package_name", "device_id", "device_name", "target_device_id"),
)


def _around_usual(name: str, usual: int | str) -> segmented.SegmentedKey:
    """A key whose other values may sort on either side of its usual one."""
    column, unusual = tables.UNUSUAL[name]
    return segmented.SegmentedKey(
        (
            segmented.Segment(and_(unusual, column < usual), column),
            segmented.Segment(column == usual),
            segmented.Segment(and_(unusual, column > usual), column),
        ),
        usual=1,
    )


def _first_usual(name: str, usual: ColumnElement[bool]) -> segmented.SegmentedKey:
    """A key whose usual value sorts before every other: none, '', false."""
    column, unusual = tables.UNUSUAL[name]
    return segmented.SegmentedKey(
        (segmented.Segment(usual), segmented.Segment(unusual, column)), usual=0
    )


# The sort keys whose values are nearly all one, read in segments (store/segmented.py).
SEGMENTED_SORTS = {
    "priority": _around_usual("priority", 0),
    "kind": _around_usual("kind", PackageKind.COMMAND.value),
    "automatic": _first_usual("automatic", J.c.automatic == false()),
    "config_id": _first_usual("config_id", J.c.target_config_id.is_(None)),
    "config_name": _first_usual("config_name", J.c.config_name == ""),
    **{name: _first_usual(name, tables.job_option(name) == "") for name in OPTIONS},
    **{f"options.{name}": _first_usual(name, tables.job_option(name) == "") for name in OPTIONS},
    # Few jobs run at once: the running ones by the (tenant, status, id) index.
    "active": segmented.SegmentedKey(
        (segmented.Segment(not_(_RUNNING)), segmented.Segment(_RUNNING)), usual=0
    ),
}


# The sort keys equal to another, indexed key on nearly every row (store/shadowed.py).
SHADOWED_SORTS = {
    "run_at": shadowed.ShadowedKey(
        J.c.run_at,
        (shadowed.Shadow(J.c.created, not_(tables.RUN_AT_DIFFERS)),),
        tables.RUN_AT_DIFFERS,
    ),
    "updated": shadowed.ShadowedKey(
        J.c.updated,
        (
            shadowed.Shadow(J.c.finished, tables.UPDATED_AS_FINISHED),
            shadowed.Shadow(J.c.created, tables.UPDATED_AS_CREATED),
        ),
        tables.UPDATED_DIFFERS,
    ),
}
PARTS_INDEXED = SEGMENTED_SORTS.keys() | SHADOWED_SORTS.keys()


TAG_FIELDS = ("tags", "options.tags")


def job_fields(tenant_id: int) -> dict[str, listing.Field]:
    """JOB_FIELDS for one customer's list: its tag filters read that customer's tags."""
    held = _tags_held(tenant_id)
    return JOB_FIELDS | {name: replace(JOB_FIELDS[name], indexed=held) for name in TAG_FIELDS}


def options_to_json(options: JobOptions) -> dict[str, Any]:
    return {
        "tags": None if options.tags is None else list(options.tags),
        "skip_tests": None if options.skip_tests is None else list(options.skip_tests),
        "begin_at": options.begin_at,
        "end_at": options.end_at,
        "testvars": None
        if options.testvars is None
        else [
            {"name": t.name, "value": t.value, "group": t.group, "action": t.action}
            for t in options.testvars
        ],
        "extra_cli_args": options.extra_cli_args,
    }


def options_from_json(data: Mapping[str, Any]) -> JobOptions:
    tags, skip, testvars = data.get("tags"), data.get("skip_tests"), data.get("testvars")
    return JobOptions(
        tags=None if tags is None else tuple(tags),
        skip_tests=None if skip is None else tuple(skip),
        begin_at=data.get("begin_at") or "",
        end_at=data.get("end_at") or "",
        testvars=None
        if testvars is None
        else tuple(
            Testvar(t["name"], t.get("value") or "", t.get("group") or "", t.get("action"))
            for t in testvars
        ),
        extra_cli_args=data.get("extra_cli_args") or "",
    )


def job_from_row(row: Row[Any] | SimpleNamespace | KeyRow) -> Job:
    return Job(
        id=row.id,
        status=JobStatus(row.status),
        package_id=row.package_id or 0,
        package_name=row.package_name,
        kind=PackageKind(row.kind),
        device_id=row.device_id,
        device_name=row.device_name,
        config_id=row.config_id,
        config_name=row.config_name,
        options=options_from_json(row.options),
        context=dict(row.context),
        argv=tuple(row.argv),
        env=dict(row.env),
        timeout_seconds=row.timeout_seconds,
        interfaces=tuple(interface_from_json(i) for i in row.interfaces),
        priority=row.priority,
        run_at=row.run_at,
        user_id=row.user_id,
        automatic=row.automatic,
        created=row.created,
        updated=row.updated,
        started=row.started,
        finished=row.finished,
        current_run_id=row.current_run_id,
        exit_code=row.exit_code,
        attempts=row.attempts,
        cancel_requested=row.cancel_requested is not None,
        tags=tuple(row.tags),
        tenant_id=row.tenant_id,
        target_device_id=row.target_device_id,
        target_config_id=row.target_config_id,
        outcome=outcome_of(row),
        sandbox=getattr(row, "sandbox", None) or {},
    )


def outcome_of(row: Any) -> Outcome | None:
    """The outcome a job reported, from a row that has its two outcome columns."""
    if row.outcome_status is None:
        return None
    return Outcome(OutcomeStatus(row.outcome_status), row.outcome_result or "")


def interfaces_to_json(interfaces: Sequence[Interface]) -> list[dict[str, Any]]:
    return [interface_to_json(i) for i in interfaces]


# The columns a new job leaves to their defaults, as a read would give them back.
NEW_JOB_DEFAULTS: dict[str, Any] = {
    "started": None,
    "finished": None,
    "current_run_id": None,
    "exit_code": None,
    "attempts": 0,
    "cancel_requested": None,
    "outcome_status": None,
    "outcome_result": None,
}
INSERT_JOB_INTERFACES = RowsInsert(tables.job_interfaces, ("job_id", "name"))


def _insert_job_rows(conn: DriverStatements, rows: list[Mapping[str, Any]]) -> list[int]:
    """The new ids, in the order of `rows`."""
    columns = tuple(rows[0])
    if all(tuple(row) == columns for row in rows):
        ordered = len(rows) > 1
        inserted = _rows_insert(columns).execute_mappings(conn, rows, ordered=ordered)
        return sorted(int(job_id) for (job_id,) in inserted)
    # Rows of different columns (none of jobyard's own launches): one statement each.
    return [int(_rows_insert(tuple(row)).execute_mappings(conn, [row])[0][0]) for row in rows]


@functools.lru_cache(maxsize=8)  # launches write the same columns every time
def _rows_insert(columns: tuple[str, ...]) -> RowsInsert:
    return RowsInsert(J, columns, returning=("id",))


def insert_jobs(
    conn: DriverStatements, rows: Sequence[Mapping[str, Any]], *, reason: str
) -> list[Job]:
    """Insert pending jobs with their interfaces and first events, a few statements for all
    of them (bulk launches); return them, in the order given, as a read would."""
    if not rows:
        return []
    ids = _insert_job_rows(conn, list(rows))
    interfaces = [
        {"job_id": job_id, "name": name}
        for job_id, row in zip(ids, rows, strict=True)
        for name in row.get("interface_names") or []
    ]
    if interfaces:
        INSERT_JOB_INTERFACES.execute_mappings(conn, interfaces)
    job_events.insert_events(
        conn,
        [
            job_events.event_row(
                job_id, None, JobStatus.PENDING, row["created"], row["user_id"], reason
            )
            for job_id, row in zip(ids, rows, strict=True)
        ],
    )
    return _new_jobs(ids, rows)


def _new_jobs(ids: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> list[Job]:
    """The jobs just inserted. A bulk launch mostly repeats a few jobs, and gives one row
    for each of them: the job of a row seen before becomes a copy of that job with its own
    id, for a tenth of the work."""
    firsts = map_shared(
        lambda given: _new_job(*given), zip(ids, rows, strict=True), key=lambda given: id(given[1])
    )
    return [
        job if job.id == job_id else evolve(job, id=job_id)
        for job, job_id in zip(firsts, ids, strict=True)
    ]


def _new_job(job_id: int, row: Mapping[str, Any]) -> Job:
    """A job just inserted, without reading it back: times in UTC, as they are stored."""
    values = NEW_JOB_DEFAULTS | dict(row)
    for key in ("run_at", "created", "updated"):
        values[key] = values[key].astimezone(UTC)
    return job_from_row(SimpleNamespace(id=job_id, **values))


def set_job_interfaces(conn: Connection, job_id: int, names: Sequence[str]) -> None:
    conn.execute(delete(tables.job_interfaces).where(tables.job_interfaces.c.job_id == job_id))
    if names:
        conn.execute(insert(tables.job_interfaces), [{"job_id": job_id, "name": n} for n in names])


JOB_BY_ID = select(J).where(J.c.id == bindparam("job_id"))
TENANT_JOB_BY_ID = JOB_BY_ID.where(J.c.tenant_id == bindparam("tenant_id"))


def get_job(conn: Connection | KeyReads, job_id: int, *, tenant_id: int | None = None) -> Job:
    """A job by id; another tenant's job does not exist (None: any tenant, for workers)."""
    if tenant_id is None:
        row = conn.execute(JOB_BY_ID, {"job_id": job_id}).first()
    else:
        row = conn.execute(TENANT_JOB_BY_ID, {"job_id": job_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(vocabulary.NO_SUCH_JOB)
    return job_from_row(row)


def list_jobs(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[Job], int]:
    fields = job_fields(tenant_id)
    tag_filter, walk = _tag_filter(request), _tag_walk(request)
    known = _counted_total(conn, request, tenant_id, tag_filter)
    if known is None and tag_filter is not None:
        known = source_counts.tagged_total(conn, *tag_filter, tenant_id=tenant_id)
    elif known is None and not pg and request.filters:
        known = source_counts.counted_total(conn, request, tenant_id=tenant_id)
    if tag_filter is not None and walk is not None:
        tags, others = tag_filter
        tagged = holding(tenant_id, tags)
        if others:
            conditions = [listing.condition(f, fields[f.field], pg=pg) for f in others]
            # The tags' rows are the customer's already; named on the jobs too, PostgreSQL
            # counts along the customer's index of jobs instead of reading them all (twice
            # as fast), where SQLite's probe by id is faster without it.
            mine = [J.c.tenant_id == tenant_id] if pg else []
            tagged = tagged.among_jobs([*mine, *conditions])
        total = int(listing.run(conn, tagged.count())[0][0]) if known is None else known
        page = tagged_page(request, tagged, total, walk, fields, pg=pg)
        return [job_from_row(r) for r in listing.run(conn, page)], total
    query = select(J).where(J.c.tenant_id == tenant_id)
    query = listing.apply(query, request, fields, pg=pg, tiebreak=J.c.id)
    order = listing.ordering(request, fields, J.c.id, pg=pg)
    if created_range.applies(request):
        ids, total = created_range.page(
            conn,
            query.order_by(None),
            created=J.c.created,
            id_column=J.c.id,
            descending=bool(request.sort) and request.sort[0].descending,
            page=request.page,
        )
        return _jobs_of(conn, ids, order), total
    sort = _one_sort_key(request)
    if sort is not None and sort.field in PARTS_INDEXED:
        total = listing.count(conn, query) if known is None else known
        ids = _page_ids_by_parts(conn, request, query.order_by(None), sort, total, pg=pg)
        return _jobs_of(conn, ids, order), total
    if pg and request.page.limit is not None:
        total = listing.count(conn, query) if known is None else known
        if ended_range.applies(request, total):
            (key,) = request.sort
            ids = ended_range.page_ids(
                conn,
                query.order_by(None),
                fields[key.field].column,
                descending=key.descending,
                page=request.page,
                id_column=J.c.id,
            )
            return _jobs_of(conn, ids, order), total
        known = total
    # A page nearer the end is read from there on SQLite. PostgreSQL's planner picks its
    # plan by the direction, and where two columns go together (a week's ends and the same
    # jobs' creation) the plan it picks backwards reads months of jobs: 41 ms became 159.
    backwards = [] if pg else listing.ordering(request, fields, J.c.id, pg=pg, backwards=True)
    keyed = listing.Keyed(J.c.id, order, first_page=not pg, backwards=backwards)
    rows, total = listing.fetch_page(conn, query, request.page, total=known, keyed=keyed)
    return [job_from_row(r) for r in rows], total


def _jobs_of(conn: Connection, ids: list[Any], order: list[ColumnElement[Any]]) -> list[Job]:
    """A page's jobs read whole by id, in the list's order."""
    rows = listing.run(conn, select(J).where(J.c.id.in_(ids)).order_by(*order))
    return [job_from_row(r) for r in rows]


def _one_sort_key(request: Listing) -> SortKey | None:
    """The list's sort key where it has one alone, and a page size."""
    if len(request.sort) != 1 or request.page.limit is None:
        return None
    return request.sort[0]


def _page_ids_by_parts(
    conn: Connection,
    request: Listing,
    filtered: Select[Any],
    sort: SortKey,
    total: int,
    *,
    pg: bool,
) -> list[int]:
    """One page's ids of a list sorted by a key read in parts (SEGMENTED_SORTS or
    SHADOWED_SORTS)."""
    if sort.field in SHADOWED_SORTS:
        return shadowed.page_ids(
            conn,
            filtered,
            SHADOWED_SORTS[sort.field],
            descending=sort.descending,
            page=request.page,
            id_column=J.c.id,
            pg=pg,
        )
    return segmented.page_ids(
        conn,
        filtered,
        SEGMENTED_SORTS[sort.field],
        descending=sort.descending,
        page=request.page,
        total=total,
        id_column=J.c.id,
        ids_walked=not pg and not request.filters,
    )


@dataclass(frozen=True)
class TagWalk:
    """The order a list filtered by tags is read in along their index."""

    by_created: bool
    descending: bool


def tagged_page(
    request: Listing,
    tagged: Tagged,
    total: int,
    walk: TagWalk,
    fields: Mapping[str, listing.Field],
    *,
    pg: bool,
) -> Select[Any]:
    """One page of a customer's jobs that hold some tags (and meet any other filters), in id or
    creation order: its ids are a walk along the tags' index, which holds them in that order,
    and only the page's jobs are read whole (matching every tagged job against the jobs'
    order first costs tens of milliseconds with 100,000 of them)."""
    ids = tagged.page_ids(
        request.page, total, by_created=walk.by_created, descending=walk.descending
    )
    return (
        select(J)
        .where(J.c.id.in_(ids.scalar_subquery()))
        .order_by(*listing.ordering(request, fields, J.c.id, pg=pg))
    )


def _tag_walk(request: Listing) -> TagWalk | None:
    """The order along the tags' index that gives the list's: by id (sorted by id, or not
    sorted: ties go by id; `id,-id` goes by the first), or by creation, ties by id."""
    if all(key.field == "id" for key in request.sort):
        return TagWalk(
            by_created=False, descending=bool(request.sort) and request.sort[0].descending
        )
    if len(request.sort) == 1 and request.sort[0].field == "created":
        return TagWalk(by_created=True, descending=request.sort[0].descending)
    return None


def _statuses_filtered(request: Listing) -> set[str] | None:
    """The statuses a listing keeps when it filters on nothing but `status=` (an empty set:
    no filter at all); None when other filters make the counted total necessary."""
    if any(f.field != "status" or f.op is not Op.EQ for f in request.filters):
        return None
    values = {str(typed_value(f, FieldKind.STRING)) for f in request.filters}
    if len(values) > 1 and request.combine is Combine.INTER:
        return None  # two different statuses at once: nothing matches, and counting is cheap
    return values


def _counted_total(
    conn: Connection, request: Listing, tenant_id: int, tag_filter: TagFilter | None
) -> int | None:
    """The total without counting jobs when the filters allow it: from `job_counts` (exact,
    kept by triggers) for statuses alone, from the tags' rows for tags alone. A COUNT over a
    large tenant's jobs costs far more than the page itself."""
    if tag_filter is not None and not tag_filter[1]:  # tags alone
        return int(conn.execute(holding(tenant_id, tag_filter[0]).count()).scalar_one())
    statuses = _statuses_filtered(request)
    if statuses is None:
        return None
    counts = tables.job_counts
    query = select(func.coalesce(func.sum(counts.c.n), 0)).where(counts.c.tenant_id == tenant_id)
    if statuses:
        query = query.where(counts.c.status.in_(sorted(statuses)))
    return int(conn.execute(query).scalar_one())


# The tags a job must hold all of, and the list's other filters.
TagFilter = tuple[tuple[str, ...], list[Filter]]


def _tag_filter(request: Listing) -> TagFilter | None:
    """The tags a job must hold all of, and the list's other filters, which it must meet too;
    None unless a filter asks for some tags and every filter must hold."""
    if len(request.filters) > 1 and request.combine is not Combine.INTER:
        return None
    for i, f in enumerate(request.filters):
        if f.field not in TAG_FIELDS or f.op is not Op.CONTAINS:
            continue
        value = typed_value(f, FieldKind.ARRAY)
        if isinstance(value, tuple) and value:
            return tuple(map(str, value)), [*request.filters[:i], *request.filters[i + 1 :]]
    return None


def select_job_ids(conn: Connection, request: Listing, *, tenant_id: int, pg: bool) -> list[int]:
    query = select(J.c.id).where(J.c.tenant_id == tenant_id)
    query = listing.apply(query, request, job_fields(tenant_id), pg=pg, tiebreak=J.c.id)
    return [row.id for row in listing.run(conn, query)]


def update_job(conn: Connection, job_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(J).where(J.c.id == job_id).values(**values))


def deletable_job_ids(conn: Connection, job_ids: Sequence[int], *, tenant_id: int) -> list[int]:
    """Of these jobs, the tenant's ones that are not running."""
    found: list[int] = []
    for start in range(0, len(job_ids), 500):
        batch = job_ids[start : start + 500]
        query = select(J.c.id).where(
            J.c.id.in_(batch), J.c.tenant_id == tenant_id, J.c.status != JobStatus.RUNNING.value
        )
        found.extend(row.id for row in conn.execute(query))
    return found


def existing_job_ids(conn: Connection, job_ids: Sequence[int], *, tenant_id: int) -> set[int]:
    """Of these jobs, the ones the tenant has."""
    found: set[int] = set()
    for start in range(0, len(job_ids), 500):
        batch = job_ids[start : start + 500]
        query = select(J.c.id).where(J.c.id.in_(batch), J.c.tenant_id == tenant_id)
        found.update(row.id for row in conn.execute(query))
    return found


def delete_jobs(conn: Connection, job_ids: Sequence[int]) -> int:
    """Delete jobs that are not running; return how many went."""
    deleted = 0
    for start in range(0, len(job_ids), 500):
        batch = job_ids[start : start + 500]
        result = conn.execute(
            delete(J).where(J.c.id.in_(batch), J.c.status != JobStatus.RUNNING.value)
        )
        deleted += int(result.rowcount)
    return deleted


def count_active_for_package(conn: Connection, package_id: int) -> int:
    active = [JobStatus.PENDING.value, JobStatus.RUNNING.value]
    query = select(func.count()).where(J.c.package_id == package_id, J.c.status.in_(active))
    return int(conn.execute(query).scalar_one())


def get_jobs(conn: Connection, job_ids: Sequence[int]) -> list[Job]:
    """Jobs by id, in the order given."""
    by_id: dict[int, Job] = {}
    for start in range(0, len(job_ids), 500):
        batch = job_ids[start : start + 500]
        by_id.update((r.id, job_from_row(r)) for r in conn.execute(_JOBS_BY_ID, {"ids": batch}))
    return [by_id[i] for i in job_ids]


def get_existing_jobs(conn: Connection, job_ids: Sequence[int]) -> list[Job]:
    """Jobs by id, in the order given, leaving out those deleted since."""
    by_id: dict[int, Job] = {}
    for start in range(0, len(job_ids), 500):
        batch = list(job_ids[start : start + 500])
        by_id.update((r.id, job_from_row(r)) for r in conn.execute(_JOBS_BY_ID, {"ids": batch}))
    return [by_id[i] for i in job_ids if i in by_id]


_JOBS_BY_ID = select(J).where(in_ids(J.c.id, "ids"))
