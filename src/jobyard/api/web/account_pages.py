"""Signing in and out, and a system admin's choice of customer."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from jobyard.api.calls import runtime_of
from jobyard.api.errors import status_for
from jobyard.api.web import session as sessions
from jobyard.api.web.rendering import redirect, render, signed_in
from jobyard.api.web.session import Session
from jobyard.domain.numbers import ascii_int
from jobyard.errors import Forbidden, TryLater, Unauthenticated, ValidationFailed
from jobyard.services import accounts


def _local(target: str) -> str:
    """Where to go after signing in: a path of this site only (never `//elsewhere`)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login_page(request: Request) -> Response:
    context = {"title": "Sign in", "next": _local(request.query_params.get("next", "/"))}
    return render(request, "login.html", context | {"error": "", "login": ""})


async def login(request: Request) -> Response:
    form = await request.form()
    login_name, password = str(form.get("login", "")), str(form.get("password", ""))
    target = _local(str(form.get("next", "/")))
    try:
        secret = await sessions.sign_in(request, login_name, password)
    except (Unauthenticated, TryLater) as exc:
        locked = isinstance(exc, TryLater)
        message = exc.message if locked else "wrong login or password"
        context = {"title": "Sign in", "next": target, "error": message, "login": login_name}
        return render(request, "login.html", context, status=status_for(exc))
    response = redirect(target)
    sessions.set_session(request, response, secret)
    sessions.set_customer(request, response, None)
    return response


@signed_in
async def logout(request: Request, session: Session) -> Response:
    form = await request.form()
    await sessions.check_csrf(request, session, str(form.get(sessions.CSRF_FIELD, "")))
    await sessions.sign_out(request, session)
    response = redirect("/login", "signed out")
    sessions.clear(response)
    return response


@signed_in
async def switch_customer(request: Request, session: Session) -> Response:
    form = await request.form()
    await sessions.check_csrf(request, session, str(form.get(sessions.CSRF_FIELD, "")))
    if not session.home.is_system_admin:
        raise Forbidden("only an admin of the system customer switches customers")
    chosen = ascii_int(str(form.get("customer", "")), low=1)
    if chosen is None:
        raise ValidationFailed("choose a customer", field="customer")
    rt = runtime_of(request)
    await run_in_threadpool(accounts.check_tenant, rt, chosen)
    response = redirect("/", f"acting for customer {chosen}")
    sessions.set_customer(request, response, chosen)
    return response
