"""Pages from the dashboard's Jinja2 templates: the shared layout's context, the filters
that format times and statuses, and the answer a refused action gets."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from jobyard.api.calls import runtime_of
from jobyard.api.errors import status_for
from jobyard.api.web.session import Session, current
from jobyard.domain.permissions import Principal, Scope
from jobyard.errors import JobyardError, Unauthenticated
from jobyard.services import accounts

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("jobyard.api.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a typo in a template is an error, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
)
# No script or style from anywhere else, and none inline: what the pages show of jobs
# (names, tags, output) can never run as code.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUS_CLASSES = {
    "pending": "pending",
    "running": "running",
    "completed": "ok",
    "completed_with_issues": "warn",
    "failed": "bad",
    "timed_out": "bad",
    "lost": "bad",
    "cancelled": "muted",
}


def when(value: datetime | None) -> str:
    """A time as UTC, to the second: what the API's times say, easier to read."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(start: datetime | None, end: datetime | None) -> str:
    """How long from `start` to `end` (or until now, for what still runs)."""
    if start is None:
        return ""
    seconds = max(0, int(((end or datetime.now(UTC)) - start).total_seconds()))
    minutes, hours = divmod(seconds, 60)[0], divmod(seconds, 3600)[0]
    if not minutes:
        return f"{seconds}s"
    if not hours:
        return f"{minutes}m {seconds % 60:02d}s"
    return f"{hours}h {minutes % 60:02d}m"


ENVIRONMENT.filters["when"] = when
ENVIRONMENT.globals["duration"] = duration
ENVIRONMENT.globals["status_class"] = lambda status: STATUS_CLASSES.get(str(status), "")


def can(principal: Principal, scope: str) -> bool:
    """Whether to show a button: the services check again whatever is pressed."""
    return Scope(scope) in principal.scopes


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    session: Session | None = None,
    status: int = 200,
) -> HTMLResponse:
    page = ENVIRONMENT.get_template(template).render(
        request=request,
        session=session,
        can=(lambda scope: can(session.principal, scope)) if session else (lambda _: False),
        notice=unquote(request.cookies.get(NOTICE_COOKIE, "")),
        **context,
    )
    response = HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)
    if NOTICE_COOKIE in request.cookies:
        response.delete_cookie(NOTICE_COOKIE)
    return response


NOTICE_COOKIE = "jobyard_notice"


def redirect(url: str, notice: str = "") -> RedirectResponse:
    """303 to a page; `notice` is shown once, on the page it leads to."""
    response = RedirectResponse(url, status_code=HTTPStatus.SEE_OTHER)
    if notice:
        response.set_cookie(NOTICE_COOKIE, quote(notice), httponly=True, samesite="strict")
    return response


def refused(request: Request, session: Session | None, exc: JobyardError) -> HTMLResponse:
    """A service's refusal as a page, with the status the API would answer."""
    status = status_for(exc)
    context = {"title": HTTPStatus(status).phrase, "message": exc.message, "status": status}
    return render(request, "error.html", context, session=session, status=status)


Page = Callable[[Request, Session], Awaitable[Response]]


def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in people: without a session, the login page (and back after);
    a service's refusal, an error page."""

    @functools.wraps(page)
    async def endpoint(request: Request) -> Response:
        try:
            session = await current(request)
        except Unauthenticated:
            if request.method == "GET" and "hx-request" not in request.headers:
                return redirect(f"/login?next={quote(request.url.path)}")
            return refused(request, None, Unauthenticated("signed out: sign in again"))
        except JobyardError as exc:
            return refused(request, None, exc)
        try:
            return await page(request, session)
        except JobyardError as exc:
            return refused(request, session, exc)

    return endpoint


async def customers(request: Request, session: Session) -> list[tuple[int, str]]:
    """The customers a system admin may switch to (nobody else switches)."""
    if not session.home.is_system_admin:
        return []
    rt = runtime_of(request)
    return await run_in_threadpool(lambda: accounts.list_tenants(rt, actor=session.home))


async def show(
    request: Request, session: Session, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page of the signed-in layout (its customer switch included)."""
    switch = await customers(request, session)
    return render(
        request, template, context | {"customers": switch}, session=session, status=status
    )
