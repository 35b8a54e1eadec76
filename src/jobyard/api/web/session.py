"""The dashboard's sign-in: a session is a login token kept in an HttpOnly cookie, and every
state-changing request carries a CSRF token derived from it (docs/dashboard.md#sessions).

A session is an ordinary login token: revoking it (logout, a new password, an admin) ends
the session at once, and it is checked on every request as the API checks a bearer token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from jobyard.api.auth import token_principal
from jobyard.api.calls import runtime_of
from jobyard.domain.numbers import ascii_int
from jobyard.domain.permissions import Principal
from jobyard.errors import Forbidden, JobyardError, Unauthenticated
from jobyard.services import accounts, authentication
from jobyard.services.authentication import LOGIN_TOKEN_LIFETIME

SESSION_COOKIE = "jobyard_session"
CUSTOMER_COOKIE = "jobyard_customer"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    """A signed-in person: who they act as (in the customer they chose), who they are at
    home (for logout and the customer switch) and the CSRF token of their forms."""

    principal: Principal
    home: Principal
    csrf: str


def csrf_token(request: Request, secret: str) -> str:
    """Bound to the session and keyed with the server's secret: a page of another site can
    neither read it nor make it."""
    return runtime_of(request).credentials.tokens.digest("csrf\0" + secret)


async def current(request: Request) -> Session:
    """The session of this request, or Unauthenticated (no cookie, or a revoked or expired
    one)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    if not secret:
        raise Unauthenticated("not signed in")
    rt = runtime_of(request)
    home = await token_principal(rt, secret, None)
    principal = home
    chosen = ascii_int(request.cookies.get(CUSTOMER_COOKIE, ""), low=1)
    if chosen is not None and home.is_system_admin and chosen != home.tenant_id:
        try:
            principal = await token_principal(rt, secret, chosen)
        except JobyardError:  # the customer was deleted meanwhile: act at home
            principal = home
    return Session(principal, home, csrf_token(request, secret))


async def check_csrf(request: Request, session: Session, submitted: str | None) -> None:
    """A state-changing request must carry the session's CSRF token (a form field or the
    header htmx sends) and, when the browser names one, come from this server's origin."""
    given = submitted or request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise Forbidden("the form is out of date or not from this site: reload and try again")
    check_origin(request)


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return
    # The host alone: behind a proxy that ends TLS, the scheme the server sees may differ.
    if urlsplit(origin).netloc != request.url.netloc:
        raise Forbidden("a request from another site")


async def sign_in(request: Request, login: str, password: str) -> str:
    """A new session's secret, or Unauthenticated / TooManyAttempts as the API's logins."""
    check_origin(request)
    rt = runtime_of(request)
    _, issued = await run_in_threadpool(
        lambda: authentication.log_in(rt, login, password, via="web session")
    )
    return issued.secret


async def sign_out(request: Request, session: Session) -> None:
    token_id = session.home.token_id
    if token_id is not None:
        rt = runtime_of(request)
        await run_in_threadpool(
            lambda: accounts.revoke_token(rt, actor=session.home, token_id=token_id)
        )


def _secure(request: Request) -> bool:
    """HTTPS, or this machine: browsers keep a Secure cookie of http://localhost too."""
    return request.url.scheme == "https" or request.url.hostname in {"localhost", "127.0.0.1"}


def set_session(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(LOGIN_TOKEN_LIFETIME.total_seconds()),
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def set_customer(request: Request, response: Response, tenant_id: int | None) -> None:
    if tenant_id is None:
        response.delete_cookie(CUSTOMER_COOKIE)
        return
    response.set_cookie(
        CUSTOMER_COOKIE, str(tenant_id), httponly=True, secure=_secure(request), samesite="strict"
    )


def clear(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CUSTOMER_COOKIE)
