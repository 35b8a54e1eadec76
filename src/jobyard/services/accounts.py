"""Account administration: customers (tenants), users with argon2 passwords, scoped API
tokens; and the admin every start makes sure of. How a request proves who it is lives in
`authentication`."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from jobyard.domain.accounts import ADMIN_LOGIN, TokenRecord, UserRecord
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import (
    ALL_SCOPES,
    SYSTEM_TENANT_ID,
    Principal,
    Role,
    Scope,
    effective_scopes,
    parse_role,
    parse_scopes,
    require,
    require_person,
)
from jobyard.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from jobyard.services import audit, authentication, tokens
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts

logger = logging.getLogger(__name__)

SYSTEM_TENANT_NAME = "system"
MIN_PASSWORD_LENGTH = 8
GENERATED_PASSWORD_BYTES = 12  # the first start's admin password: 16 URL-safe characters


@dataclass(frozen=True)
class Bootstrap:
    """What start-up did about the admin; `new_token` and `new_password` are set only when
    they were generated (at the first start, for the API and for the dashboard)."""

    admin_user_id: int
    new_token: str | None
    new_password: str | None = None


def hash_password(rt: Runtime, password: str) -> str:
    check_password_length(password)
    return rt.credentials.passwords.hash(password)


def check_password_length(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


# Start-up ---------------------------------------------------------------------------------


def _ensure_system_tenant(conn: Connection, now: datetime) -> None:
    if not accounts.tenant_exists(conn, SYSTEM_TENANT_ID):
        accounts.insert_tenant(conn, name=SYSTEM_TENANT_NAME, at=now, tenant_id=SYSTEM_TENANT_ID)


def bootstrap_admin(rt: Runtime) -> Bootstrap:
    """Tenant 1 and its admin exist, with JOBYARD_ADMIN_PASSWORD / JOBYARD_ADMIN_TOKEN if set;
    on the very first start, an admin token is generated (and returned to be shown once)."""
    now = utcnow()
    settings = rt.settings
    with rt.db.transaction() as conn:
        _ensure_system_tenant(conn, now)
        admin = accounts.find_user_by_login(conn, ADMIN_LOGIN)
        first_start = admin is None
        if admin is None:
            values = {"tenant_id": SYSTEM_TENANT_ID, "login": ADMIN_LOGIN, "role": "admin"}
            user_id = accounts.insert_user(conn, values | {"created": now, "updated": now})
        else:
            user_id = admin.id
        generated_password = None
        if first_start and not settings.admin_password:
            generated_password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        password = settings.admin_password or generated_password
        passwords = rt.credentials.passwords
        if password and not (
            admin and admin.password_hash and passwords.verify(admin.password_hash, password)
        ):
            accounts.update_user(
                conn, user_id, {"password_hash": hash_password(rt, password), "updated": now}
            )
        if settings.admin_token:
            _register_admin_token(rt, conn, user_id, settings.admin_token, now)
        generated = tokens.new_secret() if first_start and not settings.admin_token else None
        if generated is not None:
            name = "generated at first start"
            tokens.store_token(
                rt, conn, user_id=user_id, name=name, secret=generated, scopes=ALL_SCOPES, at=now
            )
    return Bootstrap(user_id, new_token=generated, new_password=generated_password)


def _register_admin_token(
    rt: Runtime, conn: Connection, user_id: int, secret: str, now: datetime
) -> None:
    """JOBYARD_ADMIN_TOKEN works after every start: stored under the current key, live even
    if a password change (or anyone) revoked it; the variable is the way to change it."""
    digest = tokens.hash_token(rt, secret)
    for stored in (digest, rt.credentials.tokens.legacy_digest(secret)):
        token_id = accounts.token_id_by_hash(conn, stored)
        if token_id is not None:
            accounts.reinstate_token(conn, token_id, digest)
            return
    name = "JOBYARD_ADMIN_TOKEN"
    tokens.store_token(
        rt, conn, user_id=user_id, name=name, secret=secret, scopes=ALL_SCOPES, at=now
    )


# Users ------------------------------------------------------------------------------------


def _target_user(conn: Connection, actor: Principal, user_id: int) -> UserRecord:
    """A user of the tenant acted in, or the actor themself: a system admin acting for a
    customer (`Customer-Id`) is still their own user, with their own tokens."""
    own = user_id == actor.user_id and actor.job_id is None
    return accounts.get_user(conn, user_id, tenant_id=None if own else actor.tenant_id)


def create_user(
    rt: Runtime, *, actor: Principal, login: str, role: str, password: str | None
) -> UserRecord:
    require(actor, Scope.ADMIN)
    parse_role(role)
    now = utcnow()
    values = {
        "tenant_id": actor.tenant_id,
        "login": login,
        "role": role,
        "password_hash": hash_password(rt, password) if password else None,
        "created": now,
        "updated": now,
    }
    with rt.db.transaction() as conn:
        if not accounts.tenant_exists(conn, actor.tenant_id):
            raise ValidationFailed(f"no such customer {actor.tenant_id}")
        user_id = accounts.insert_user(conn, values)
        audit.record(
            conn, actor, "user.create", "user", [user_id], detail={"login": login, "role": role}
        )
        return accounts.get_user(conn, user_id, tenant_id=None)


def list_users(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[UserRecord], int]:
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return accounts.list_users(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)


def get_user(rt: Runtime, *, actor: Principal, user_id: int) -> UserRecord:
    """Anyone may read their own user (a job's token is no one); admins any of their
    tenant's."""
    require_person(actor)
    if user_id != actor.user_id:
        require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return _target_user(conn, actor, user_id)


def edit_user(
    rt: Runtime,
    *,
    actor: Principal,
    user_id: int,
    role: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
    keep_tokens: bool = False,
) -> UserRecord:
    """Admins change roles and passwords; a user may change their own password by giving the
    current one. A new password revokes the user's API tokens (login sessions included) unless
    `keep_tokens`; the token the user changes their own password with stays."""
    own = user_id == actor.user_id and actor.job_id is None
    if not own or role is not None:
        require(actor, Scope.ADMIN)
    new_hash = None
    if password is not None:
        check_password_length(password)
        if own and Scope.ADMIN not in actor.scopes:
            _check_current(rt, actor, current_password)
        new_hash = hash_password(rt, password)
    now = utcnow()
    with rt.db.transaction() as conn:
        user = _target_user(conn, actor, user_id)
        values: dict[str, object] = {"updated": now}
        if role is not None:
            parse_role(role)
            if user.login == ADMIN_LOGIN and user.tenant_id == SYSTEM_TENANT_ID and role != "admin":
                raise Conflict("the system admin keeps the admin role")
            values["role"] = role
        if new_hash is not None:
            values |= {"password_hash": new_hash, "failed_logins": 0, "locked_until": None}
        accounts.update_user(conn, user_id, values)
        changed = sorted(k for k in values if k != "updated")
        audit.record(conn, actor, "user.edit", "user", [user_id], detail={"changed": changed})
        if new_hash is not None and not keep_tokens:
            _revoke_for_new_password(conn, actor, user_id, keep=actor.token_id if own else None)
        return accounts.get_user(conn, user_id, tenant_id=None)


def _revoke_for_new_password(
    conn: Connection, actor: Principal, user_id: int, *, keep: int | None
) -> None:
    revoked = accounts.revoke_user_tokens(conn, user_id, at=utcnow(), keep=keep)
    detail = {"reason": "password changed", "user_id": user_id}
    audit.record(conn, actor, "token.revoke", "token", revoked, detail=detail)


def _check_current(rt: Runtime, actor: Principal, current_password: str | None) -> None:
    """The caller's own current password, counted against the login like any other try."""
    if not current_password:
        raise ValidationFailed("current_password is required to change your own password")
    try:
        authentication.authenticate_password(rt, actor.login, current_password)
    except Unauthenticated:
        raise Forbidden("the current password is wrong") from None


def delete_user(rt: Runtime, *, actor: Principal, user_id: int) -> None:
    require(actor, Scope.ADMIN)
    if user_id == actor.user_id:
        raise Conflict("you cannot delete yourself")
    with rt.db.transaction() as conn:
        user = _target_user(conn, actor, user_id)
        if accounts.user_has_objects(conn, user_id):
            raise Conflict(f"user {user.login!r} owns jobs or packages; change their role instead")
        accounts.delete_user(conn, user_id)
        audit.record(conn, actor, "user.delete", "user", [user_id], detail={"login": user.login})


# Tokens -----------------------------------------------------------------------------------


def create_token(
    rt: Runtime,
    *,
    actor: Principal,
    name: str,
    scopes: list[str],
    expires: datetime | None,
    user_id: int | None = None,
) -> tokens.IssuedToken:
    """A new token for the actor (or, for an admin, another user of the tenant); its scopes
    may not exceed what its user's role allows."""
    if actor.job_id is not None:
        raise Forbidden("a job's token may not create tokens")
    if user_id not in {None, actor.user_id}:
        require(actor, Scope.ADMIN)
    wanted = parse_scopes(scopes)
    now = utcnow()
    if expires is not None and expires <= now:
        raise ValidationFailed("expires must be in the future")
    secret = tokens.new_secret()
    with rt.db.transaction() as conn:
        owner = _target_user(conn, actor, user_id or actor.user_id)
        allowed = effective_scopes(Role(owner.role), None)
        if owner.id == actor.user_id:
            allowed &= actor.scopes
        beyond = wanted - allowed
        if beyond:
            names = ", ".join(sorted(s.value for s in beyond))
            raise Forbidden(f"a token of {owner.login!r} cannot have scope {names}")
        token_id = tokens.store_token(
            rt,
            conn,
            user_id=owner.id,
            name=name,
            secret=secret,
            scopes=wanted,
            at=now,
            expires=expires,
        )
        audit.record(conn, actor, "token.create", "token", [token_id], detail={"name": name})
        return tokens.IssuedToken(accounts.get_token(conn, token_id, tenant_id=None), secret)


def list_tokens(
    rt: Runtime, *, actor: Principal, request: Listing
) -> tuple[list[TokenRecord], int]:
    """Admins see the tenant's tokens; everyone else their own."""
    require(actor, Scope.JOBS_READ)
    only = None if Scope.ADMIN in actor.scopes else actor.user_id
    with rt.db.read() as conn:
        return accounts.list_tokens(
            conn, request, tenant_id=actor.tenant_id, user_id=only, pg=rt.pg
        )


def revoke_token(rt: Runtime, *, actor: Principal, token_id: int) -> None:
    """Revoking takes effect on the token's next request."""
    require(actor, Scope.JOBS_READ)
    with rt.db.transaction() as conn:
        token = accounts.get_token(conn, token_id, tenant_id=actor.tenant_id)
        if token.user_id != actor.user_id:
            require(actor, Scope.ADMIN)
        if token.revoked is not None or token.job_id is not None:
            raise NotFound("no such token")
        accounts.revoke_token(conn, token_id, utcnow())
        audit.record(conn, actor, "token.revoke", "token", [token_id], detail={"name": token.name})


# Tenants ----------------------------------------------------------------------------------


def create_tenant(rt: Runtime, *, actor: Principal, name: str) -> int:
    if not actor.is_system_admin:
        raise Forbidden("only an admin of the system tenant may create customers")
    with rt.db.transaction() as conn:
        tenant_id = accounts.insert_tenant(conn, name=name, at=utcnow())
        audit.record(conn, actor, "tenant.create", "tenant", [tenant_id], detail={"name": name})
        return tenant_id


def list_tenants(rt: Runtime, *, actor: Principal) -> list[tuple[int, str]]:
    if not actor.is_system_admin:
        raise Forbidden("only an admin of the system tenant may list customers")
    with rt.db.read() as conn:
        return [(row.id, row.name) for row in accounts.list_tenants(conn)]


def check_tenant(rt: Runtime, tenant_id: int) -> None:
    """A customer id named in a request must exist."""
    with rt.db.read() as conn:
        if not accounts.tenant_exists(conn, tenant_id):
            raise NotFound(f"no such customer {tenant_id}")


def find_user(rt: Runtime, *, login: str) -> UserRecord:
    with rt.db.read() as conn:
        user = accounts.find_user_by_login(conn, login)
    if user is None:
        raise NotFound(f"no such user {login!r}")
    return user


def role_scope_names(role: str) -> list[str]:
    """Every scope a role allows, by name."""
    return sorted(s.value for s in effective_scopes(parse_role(role), None))
