"""Accounts in the native API: `/authenticate`, `users/`, `tokens/`, `tenants/`, `events/`."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jobyard.api import bodies, params, render
from jobyard.api.auth import authenticate
from jobyard.api.bodies import ReadsJsonBody
from jobyard.api.calls import runtime_of
from jobyard.api.native import schemas
from jobyard.api.native.answers import (
    AuditEventOut,
    CustomerOut,
    LoginOut,
    TokenOut,
    UserOut,
    one,
    page,
)
from jobyard.api.native.inputs import run_at as parse_time
from jobyard.api.openapi import AUTHENTICATED, NO_CONTENT, PUBLIC, WRITING, problems, request_body
from jobyard.api.render import ref, rfc3339
from jobyard.domain.accounts import AuditRecord, TokenRecord, UserRecord
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal
from jobyard.domain.vocabulary import AUDIT_FIELDS, TOKEN_FIELDS, USER_FIELDS
from jobyard.errors import ValidationFailed
from jobyard.services import accounts, audit, authentication
from jobyard.services.runtime import utcnow

router = APIRouter(route_class=ReadsJsonBody, responses=AUTHENTICATED)
# `/authenticate` reads its own body: the CDRouter client sends a form or the query string.
login_router = APIRouter(tags=["accounts"])
Caller = Annotated[Principal, Depends(authenticate)]
UserId = Annotated[str, params.id_in_path("user")]
TokenId = Annotated[str, params.id_in_path("token")]
DELETED = NO_CONTENT | WRITING
USERS: list[str | Enum] = ["users"]
TOKENS: list[str | Enum] = ["tokens"]
CUSTOMERS: list[str | Enum] = ["customers"]
EVENTS: list[str | Enum] = ["events"]


def present_user(u: UserRecord) -> dict[str, Any]:
    """A user, with the fields the CDRouter client reads (`name` is the login)."""
    return {
        "id": str(u.id),
        "name": u.login,
        "login": u.login,
        "role": u.role,
        "admin": u.role == "admin",
        "disabled": False,
        "locked": u.locked_until is not None and u.locked_until > utcnow(),
        "description": "",
        "customer_id": str(u.tenant_id),
        "created": rfc3339(u.created),
        "updated": rfc3339(u.updated),
    }


def present_token(t: TokenRecord, secret: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(t.id),
        "name": t.name,
        "user_id": str(t.user_id),
        "scopes": list(t.scopes),
        "created": rfc3339(t.created),
        "expires": rfc3339(t.expires) if t.expires else None,
        "last_used": rfc3339(t.last_used) if t.last_used else None,
    }
    if secret is not None:
        data["token"] = secret  # shown this once: no other answer has the key
    return data


def present_event(e: AuditRecord) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "at": rfc3339(e.at),
        "user_id": ref(e.user_id),
        "token_id": ref(e.token_id),
        "action": e.action,
        "object_type": e.object_type,
        "object_id": ref(e.object_id),
        "detail": dict(e.detail),
        "customer_id": str(e.tenant_id),
    }


async def _credentials(
    request: Request, username: str | None, password: str | None
) -> tuple[str, str]:
    """`username` and `password` from the query string (what the CDRouter client sends), a
    form body (what its docs show) or a JSON body."""
    if username is not None:
        return username, password or ""
    raw = await bodies.read_bytes(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        return _json_credentials(raw)
    form = parse_qs(raw.decode("utf-8", errors="replace"))
    if "username" not in form:
        raise ValidationFailed("username and password are required")
    return form["username"][0], form.get("password", [""])[0]


def _json_credentials(raw: bytes) -> tuple[str, str]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise ValidationFailed("malformed JSON body") from None
    if not isinstance(data, dict) or not isinstance(data.get("username"), str):
        raise ValidationFailed("username and password are required")
    return data["username"], str(data.get("password", ""))


LOGIN_BODY = request_body(
    schemas.CredentialsIn, media_types=("application/x-www-form-urlencoded", "application/json")
)


@login_router.post(
    "/authenticate",
    response_model=one(LoginOut),
    responses=problems(400, 401, 413, 429, 503),
    openapi_extra=PUBLIC | LOGIN_BODY,
)
async def log_in(
    request: Request,
    username: Annotated[str | None, Query(description="The login (or give it in the body)")] = None,
    password: Annotated[str | None, Query(description="Its password")] = None,
) -> Response:
    """CDRouter's login: a username and password in, the user with a new API token out."""
    login, secret = await _credentials(request, username, password)
    rt = runtime_of(request)
    principal, issued = await run_in_threadpool(authentication.log_in, rt, login, secret)
    user = await run_in_threadpool(
        lambda: accounts.get_user(rt, actor=principal, user_id=principal.user_id)
    )
    return render.one(present_user(user) | {"token": issued.secret})


# Users ------------------------------------------------------------------------------------


@router.get("/api/v1/users/", response_model=page(UserOut), tags=USERS)
async def list_users(
    wanted: Annotated[Listing, Depends(params.listing_of(USER_FIELDS))],
    request: Request,
    who: Caller,
) -> Response:
    found, total = await run_in_threadpool(
        lambda: accounts.list_users(runtime_of(request), actor=who, request=wanted)
    )
    return render.page([present_user(u) for u in found], total=total, request=wanted.page)


@router.post("/api/v1/users/", response_model=one(UserOut), responses=WRITING, tags=USERS)
async def create_user(body: schemas.UserIn, request: Request, who: Caller) -> Response:
    created = await run_in_threadpool(
        lambda: accounts.create_user(
            runtime_of(request),
            actor=who,
            login=body.login,
            role="viewer" if body.role is None else body.role,
            password=body.password,
        )
    )
    return render.one(present_user(created))


@router.get("/api/v1/users/me/", response_model=one(UserOut), tags=USERS)
async def current_user(request: Request, who: Caller) -> Response:
    found = await run_in_threadpool(
        lambda: accounts.get_user(runtime_of(request), actor=who, user_id=who.user_id)
    )
    return render.one(present_user(found))


@router.get("/api/v1/users/{user_id}/", response_model=one(UserOut), tags=USERS)
async def get_user(user_id: UserId, request: Request, who: Caller) -> Response:
    target = params.object_id(user_id, "no such user")
    found = await run_in_threadpool(
        lambda: accounts.get_user(runtime_of(request), actor=who, user_id=target)
    )
    return render.one(present_user(found))


@router.patch(
    "/api/v1/users/{user_id}/", response_model=one(UserOut), responses=WRITING, tags=USERS
)
async def edit_user(
    user_id: UserId, body: schemas.UserEditIn, request: Request, who: Caller
) -> Response:
    target = params.object_id(user_id, "no such user")
    edited = await run_in_threadpool(
        lambda: accounts.edit_user(
            runtime_of(request),
            actor=who,
            user_id=target,
            role=body.role,
            password=body.password,
            current_password=body.current_password,
            keep_tokens=body.keep_tokens,
        )
    )
    return render.one(present_user(edited))


@router.delete("/api/v1/users/{user_id}/", status_code=204, responses=DELETED, tags=USERS)
async def delete_user(user_id: UserId, request: Request, who: Caller) -> Response:
    target = params.object_id(user_id, "no such user")
    await run_in_threadpool(
        lambda: accounts.delete_user(runtime_of(request), actor=who, user_id=target)
    )
    return render.no_content()


# Tokens -----------------------------------------------------------------------------------


@router.get("/api/v1/tokens/", response_model=page(TokenOut), tags=TOKENS)
async def list_tokens(
    wanted: Annotated[Listing, Depends(params.listing_of(TOKEN_FIELDS))],
    request: Request,
    who: Caller,
) -> Response:
    found, total = await run_in_threadpool(
        lambda: accounts.list_tokens(runtime_of(request), actor=who, request=wanted)
    )
    return render.page([present_token(t) for t in found], total=total, request=wanted.page)


@router.post("/api/v1/tokens/", response_model=one(TokenOut), responses=WRITING, tags=TOKENS)
async def create_token(body: schemas.TokenIn, request: Request, who: Caller) -> Response:
    """A new token; its secret (`token`) is in this answer only."""
    if body.expires and body.expires_in:
        raise ValidationFailed("give expires or expires_in, not both")
    expires = parse_time(body.expires) if body.expires else None
    if body.expires_in:
        expires = utcnow() + timedelta(seconds=body.expires_in)
    owner = params.reference_id(body.user_id, "user_id")
    issued = await run_in_threadpool(
        lambda: accounts.create_token(
            runtime_of(request),
            actor=who,
            name=body.name,
            scopes=body.scopes,
            expires=expires,
            user_id=owner,
        )
    )
    return render.one(present_token(issued.record, issued.secret))


@router.delete("/api/v1/tokens/{token_id}/", status_code=204, responses=DELETED, tags=TOKENS)
async def revoke_token(token_id: TokenId, request: Request, who: Caller) -> Response:
    target = params.object_id(token_id, "no such token")
    await run_in_threadpool(
        lambda: accounts.revoke_token(runtime_of(request), actor=who, token_id=target)
    )
    return render.no_content()


# Tenants and the audit trail --------------------------------------------------------------


@router.get("/api/v1/tenants/", response_model=one(list[CustomerOut]), tags=CUSTOMERS)
async def list_tenants(request: Request, who: Caller) -> Response:
    found = await run_in_threadpool(lambda: accounts.list_tenants(runtime_of(request), actor=who))
    return render.one([{"id": str(i), "name": name} for i, name in found])


@router.post("/api/v1/tenants/", response_model=one(CustomerOut), responses=WRITING, tags=CUSTOMERS)
async def create_tenant(body: schemas.TenantIn, request: Request, who: Caller) -> Response:
    tenant_id = await run_in_threadpool(
        lambda: accounts.create_tenant(runtime_of(request), actor=who, name=body.name)
    )
    return render.one({"id": str(tenant_id), "name": body.name})


@router.get("/api/v1/events/", response_model=page(AuditEventOut), tags=EVENTS)
async def list_events(
    wanted: Annotated[Listing, Depends(params.listing_of(AUDIT_FIELDS))],
    request: Request,
    who: Caller,
) -> Response:
    found, total = await run_in_threadpool(
        lambda: audit.list_events(runtime_of(request), actor=who, request=wanted)
    )
    return render.page([present_event(e) for e in found], total=total, request=wanted.page)
