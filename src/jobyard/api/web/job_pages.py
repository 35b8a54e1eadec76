"""The overview, the jobs table and one job's page, with their live parts: the table's rows
and a job's summary refreshed by htmx, and its log read by pages and followed live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobyard.api import params
from jobyard.api.calls import runtime_of
from jobyard.api.native import follow
from jobyard.api.web import job_filters
from jobyard.api.web.rendering import redirect, show, signed_in
from jobyard.api.web.session import CSRF_FIELD, Session, check_csrf
from jobyard.domain.listing import Listing
from jobyard.domain.vocabulary import JOB_FIELDS, NO_SUCH_JOB, PACKAGE_FIELDS, RUN_FIELDS
from jobyard.errors import JobyardError, NotFound, ValidationFailed
from jobyard.services import catalog, jobs, overview, results, runs
from jobyard.services.runtime import Runtime

LOG_TAIL_BYTES = 64 * 1024  # what a job's page shows of its log at first; the rest on demand
T = TypeVar("T")


async def _call(request: Request, work: Callable[[Runtime], T]) -> T:
    rt = runtime_of(request)
    return await run_in_threadpool(lambda: work(rt))


def _job_id(request: Request) -> int:
    return params.object_id(str(request.path_params["job_id"]), NO_SUCH_JOB)


RECENT_FAILURES = params.listing(
    QueryParams(
        "filter=status=failed&filter=status=timed_out&filter=status=lost&type=union"
        "&sort=-id&limit=10"
    ),
    JOB_FIELDS,
)


@signed_in
async def overview_page(request: Request, session: Session) -> Response:
    who = session.principal
    figures = await _call(request, lambda rt: overview.overview(rt, actor=who))
    failures, _ = await _call(
        request, lambda rt: jobs.list_jobs(rt, actor=who, request=RECENT_FAILURES)
    )
    peak = max([1, *(h.launched for h in figures.hours)])
    return await show(
        request,
        session,
        "overview.html",
        title="Overview",
        active="/",
        figures=figures,
        failures=failures,
        peak=peak,
    )


SEARCHED_PACKAGES = 1000  # at most, by the search box


def _search(rt: Runtime, session: Session, found: job_filters.JobQuery) -> job_filters.JobQuery:
    """The query with its search box resolved: the ids of the packages it names."""
    text = found.package_search()
    if not text:
        return found
    query = QueryParams([("filter", text), ("limit", str(SEARCHED_PACKAGES))])
    wanted = params.listing(query, PACKAGE_FIELDS)
    packages, _ = catalog.list_packages(rt, actor=session.principal, request=wanted)
    return found.searched([p.id for p in packages])


async def _jobs_found(request: Request, session: Session) -> dict[str, Any]:
    query = job_filters.read(request.query_params)
    context: dict[str, Any] = {"query": query, "filters": job_filters, "problem": ""}
    try:
        query = await _call(request, lambda rt: _search(rt, session, query))
        context["query"] = query
        wanted = job_filters.listing(query)
        found, total = await _call(
            request, lambda rt: jobs.list_jobs(rt, actor=session.principal, request=wanted)
        )
    except ValidationFailed as exc:
        return context | {"jobs": [], "total": 0, "problem": exc.message, "pages": 1, "page": 1}
    pages = max(1, -(-total // wanted.page.limit)) if wanted.page.limit else 1
    return context | {"jobs": found, "total": total, "pages": pages, "page": wanted.page.page}


@signed_in
async def jobs_page(request: Request, session: Session) -> Response:
    context = await _jobs_found(request, session)
    status = 400 if context["problem"] else 200
    return await show(
        request, session, "jobs.html", status=status, title="Jobs", active="/jobs", **context
    )


@signed_in
async def job_rows(request: Request, session: Session) -> Response:
    """The table's rows alone, for its refresh every few seconds."""
    context = await _jobs_found(request, session)
    return await show(request, session, "_job_rows.html", **context)


BULK_ACTIONS = ("cancel", "relaunch", "delete")
PROBLEMS_SHOWN = 3  # of the jobs a bulk action could not act on, in its notice


@signed_in
async def bulk_action(request: Request, session: Session) -> Response:
    form = await request.form()
    await check_csrf(request, session, str(form.get(CSRF_FIELD, "")))
    action = str(form.get("action", ""))
    if action not in BULK_ACTIONS:
        raise ValidationFailed(f"unknown action {action!r}", field="action")
    ids = [params.object_id(str(v), NO_SUCH_JOB) for v in form.getlist("job")]
    if not ids:
        raise ValidationFailed("select at least one job", field="job")
    done, refused = await _call(request, lambda rt: _each(rt, session, action, ids))
    back = str(form.get("back", "/jobs"))
    notice = f"{action}: {done} of {len(ids)} done" + (f"; {refused}" if refused else "")
    return redirect(back if back.startswith("/jobs") else "/jobs", notice)


def _each(rt: Runtime, session: Session, action: str, ids: list[int]) -> tuple[int, str]:
    """Each selected job on its own, as the API would act on it one by one: a job that has
    ended cannot be cancelled, a running one cannot be deleted, and the others go ahead."""
    who = session.principal
    if action == "delete":
        return jobs.delete_jobs(rt, actor=who, job_ids=ids), ""
    done, problems = 0, []
    for job_id in ids:
        try:
            if action == "cancel":
                jobs.cancel_job(rt, actor=who, job_id=job_id)
            else:
                jobs.relaunch_job(rt, actor=who, job_id=job_id)
            done += 1
        except JobyardError as exc:
            problems.append(exc.message)
    shown = problems[:PROBLEMS_SHOWN]
    return done, "; ".join(shown) + (" …" if len(problems) > len(shown) else "")


def _runs_of(job_id: int) -> Listing:
    return params.listing(
        QueryParams(f"filter=job_id={job_id}&sort=attempt&limit=none"), RUN_FIELDS
    )


def _job_view(rt: Runtime, session: Session, job_id: int) -> dict[str, Any]:
    who = session.principal
    job = jobs.get_job(rt, actor=who, job_id=job_id)
    found_runs, _ = runs.list_runs(rt, actor=who, request=_runs_of(job_id))
    return {
        "job": job,
        "runs": found_runs,
        "events": jobs.list_job_events(rt, actor=who, job_id=job_id),
        "results": results.list_results(rt, actor=who, job_id=job_id),
    }


@signed_in
async def job_page(request: Request, session: Session) -> Response:
    job_id = _job_id(request)
    view = await _call(request, lambda rt: _job_view(rt, session, job_id))
    chosen = params.integer(request.query_params.get("attempt"), "attempt", default=None)
    runs_by_attempt = {r.attempt: r for r in view["runs"]}
    if chosen is not None and chosen not in runs_by_attempt:
        raise NotFound(f"job {job_id} has no attempt {chosen}")
    shown = runs_by_attempt.get(chosen) if chosen else (view["runs"][-1] if view["runs"] else None)
    context = view | {"shown": shown, "tail": LOG_TAIL_BYTES, "follow": chosen is None}
    return await show(
        request, session, "job.html", title=f"Job {job_id}", active="/jobs", **context
    )


@signed_in
async def job_summary(request: Request, session: Session) -> Response:
    """A job's status, runs, events and results alone, for their refresh while it runs."""
    job_id = _job_id(request)
    view = await _call(request, lambda rt: _job_view(rt, session, job_id))
    return await show(request, session, "_job_summary.html", **view)


JOB_ACTIONS = ("cancel", "relaunch", "delete")  # each a button on a job's page


@signed_in
async def job_action(request: Request, session: Session) -> Response:
    form = await request.form()
    await check_csrf(request, session, str(form.get(CSRF_FIELD, "")))
    job_id, action = _job_id(request), request.url.path.rsplit("/", 1)[1]
    who = session.principal
    if action == "cancel":
        await _call(request, lambda rt: jobs.cancel_job(rt, actor=who, job_id=job_id))
        return redirect(f"/jobs/{job_id}", f"job {job_id}: cancel requested")
    if action == "relaunch":
        job = await _call(request, lambda rt: jobs.relaunch_job(rt, actor=who, job_id=job_id))
        return redirect(f"/jobs/{job.id}", f"relaunched job {job_id} as job {job.id}")
    await _call(request, lambda rt: jobs.delete_job(rt, actor=who, job_id=job_id))  # "delete"
    return redirect("/jobs", f"job {job_id} deleted")


MAX_LOG_PAGE = 1024 * 1024


@signed_in
async def log_slice(request: Request, session: Session) -> Response:
    """Raw bytes of one attempt's log: its last `tail` bytes, or the bytes from `offset` to
    `until` (a page of a large log, read backwards as the reader asks), with where they start
    (`X-Offset`) and where the next read starts (`X-Next-Offset`)."""
    job_id = _job_id(request)
    query = request.query_params
    attempt = params.integer(query.get("attempt"), "attempt", default=None)
    tail = params.integer(query.get("tail"), "tail", default=None, high=MAX_LOG_PAGE)
    offset = params.integer(query.get("offset"), "offset", default=0) or 0
    until = params.integer(query.get("until"), "until", default=None)
    end = offset + MAX_LOG_PAGE if until is None else min(until, offset + MAX_LOG_PAGE)
    who = session.principal
    if tail is not None:
        piece = await _call(
            request,
            lambda rt: runs.read_log_tail(
                rt, actor=who, job_id=job_id, attempt=attempt, tail_bytes=tail
            ),
        )
    else:
        piece = await _call(
            request,
            lambda rt: runs.read_log_range(
                rt, actor=who, job_id=job_id, attempt=attempt, start=offset, end=end
            ),
        )
    headers = {
        "X-Offset": str(piece.offset),
        "X-Next-Offset": str(piece.next_offset),
        "X-Complete": str(piece.complete),
    }
    return Response(piece.content, media_type="text/plain; charset=utf-8", headers=headers)


@signed_in
async def log_download(request: Request, session: Session) -> Response:
    """An attempt's whole stored log as a file, read a page at a time."""
    job_id = _job_id(request)
    attempt = params.integer(request.query_params.get("attempt"), "attempt", default=None)
    rt, who = runtime_of(request), session.principal

    def page(offset: int) -> runs.LogSlice:
        return runs.read_log(rt, actor=who, job_id=job_id, offset=offset, attempt=attempt)

    first = await run_in_threadpool(page, 0)  # refusals answer before the file starts

    async def pages() -> AsyncIterator[bytes]:
        piece = first
        while piece.content:
            yield piece.content
            piece = await run_in_threadpool(page, piece.next_offset)

    name = f"job-{job_id}" + (f"-attempt-{attempt}" if attempt else "") + ".log"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(pages(), media_type="text/plain; charset=utf-8", headers=disposition)


@signed_in
async def log_follow(request: Request, session: Session) -> Response:
    """The job's log as the API's event stream, from an attempt and offset on."""
    query = request.query_params
    return await follow.respond(
        request,
        session.principal,
        _job_id(request),
        offset=params.integer(query.get("offset"), "offset", default=0) or 0,
        attempt=params.integer(query.get("attempt"), "attempt", default=None),
        stream=None,
        last_event_id=request.headers.get("last-event-id"),
    )
