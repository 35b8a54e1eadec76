"""Who is calling: a bearer token, HTTP Basic (password or token), or a `token` parameter;
and for which customer (the `Customer-Id` header)."""

from __future__ import annotations

import base64
import binascii

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from jobyard.api import params
from jobyard.api.calls import quick_read, runtime_of
from jobyard.domain.numbers import ascii_int
from jobyard.domain.permissions import Principal, choose_tenant, require_own_job_route
from jobyard.errors import Unauthenticated, ValidationFailed
from jobyard.services import accounts, authentication
from jobyard.services.runtime import Runtime

CUSTOMER_HEADER = "customer-id"


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    login, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("malformed Basic credentials")
    return login, password


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer …` header; None for any other."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def customer_id(request: Request) -> int | None:
    """The tenant a request names, if any."""
    raw = request.headers.get(CUSTOMER_HEADER)
    if raw is None or raw.strip() == "":
        return None
    found = ascii_int(raw.strip(), low=1)
    if found is None:
        raise ValidationFailed(
            f"invalid Customer-Id {raw[:40]!r}: expected a customer number", field="Customer-Id"
        )
    return found


def _token(request: Request, header: str) -> str | None:
    """A bearer token, else a `token` parameter unless the header is HTTP Basic."""
    token = bearer_token(header)
    if token is not None or header.partition(" ")[0].lower() == "basic":
        return token
    for name in ("token", "api-token"):
        value = request.query_params.get(name)
        if value:
            return value
    return None


def _identify(rt: Runtime, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    token = _token(request, header)
    if token is not None:
        return authentication.authenticate_token(rt, token)
    basic = _basic_credentials(header)
    if basic is not None:
        return authentication.authenticate_basic(rt, *basic)
    raise Unauthenticated()


def _authenticate(rt: Runtime, request: Request, requested_tenant: int | None) -> Principal:
    principal = choose_tenant(_identify(rt, request), requested_tenant)
    if principal.tenant_id != principal.home_tenant_id:
        accounts.check_tenant(rt, principal.tenant_id)
    return principal


# Every operation that authenticates takes it; `authenticate` reads it from the request, and
# the API's description declares it on those operations (`openapi.build`): as a parameter of
# the dependency, FastAPI's handling of it cost every request about 15 µs.
CUSTOMER_HEADER_DECLARED = params.read_by_hand(
    "Customer-Id",
    "The customer to act for (a number); a system admin's choice, anyone else's own "
    "customer. Left out: the caller's own customer.",
    where="header",
)


async def authenticate(request: Request) -> Principal:
    """The caller: 401 without valid credentials, 403 for a customer it may not act for,
    or for a job's token on an operation that is not on its own job. The customer is the
    `Customer-Id` header's (see `customer_id`)."""
    principal = await _caller(request)
    if principal.job_id is not None:
        job_id = ascii_int(str(request.path_params.get("job_id", "")), low=1)
        require_own_job_route(principal, job_id)
    return principal


async def _caller(request: Request) -> Principal:
    requested = customer_id(request)
    rt = runtime_of(request)
    token = _token(request, request.headers.get("authorization", ""))
    if token is None or not rt.db.quick_reads:
        return await run_in_threadpool(_authenticate, rt, request, requested)
    return await token_principal(rt, token, requested)


async def token_principal(rt: Runtime, token: str, requested: int | None) -> Principal:
    """Who a token stands for, acting for the `requested` customer (its own if None): the
    API's bearer tokens and the dashboard's session cookie alike."""
    # Every request comes this way: the token lookup needs no thread of its own; the
    # rarer writes (last_used, once a minute) and tenant checks still go to one.
    check = await quick_read(rt, lambda: authentication.check_token(rt, token))
    if check.touch_due:
        await run_in_threadpool(authentication.touch_token, rt, check)
    principal = choose_tenant(check.principal, requested)
    if principal.tenant_id != principal.home_tenant_id:
        await run_in_threadpool(accounts.check_tenant, rt, principal.tenant_id)
    return principal
