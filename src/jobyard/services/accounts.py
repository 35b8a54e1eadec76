"""Accounts: tenants, users with argon2 passwords, scoped API tokens, and how a request is
authenticated (token, password, or a job's own token)."""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from jobyard.domain.accounts import TokenRecord, UserRecord
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import (
    ALL_SCOPES,
    JOB_TOKEN_SCOPES,
    SYSTEM_TENANT_ID,
    Principal,
    Role,
    Scope,
    choose_tenant,
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
    TooManyAttempts,
    Unauthenticated,
    ValidationFailed,
)
from jobyard.services import audit
from jobyard.services.credentials import LOCK_AFTER_FAILURES, LOCK_SECONDS
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts

logger = logging.getLogger(__name__)

ADMIN_LOGIN = "admin"
SYSTEM_TENANT_NAME = "system"
TOKEN_BYTES = 32
MAX_SECRET_LENGTH = 512
# A job token names what it is, so that its look-up goes to the runs.
JOB_TOKEN_PREFIX = "jyj_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD_LENGTH = 8
LOGIN_TOKEN_LIFETIME = timedelta(days=30)
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used at most this often per token
BAD_LOGIN = "invalid username or password"


@dataclass(frozen=True)
class Bootstrap:
    """What start-up did about the admin; `new_token` is set only when one was generated."""

    admin_user_id: int
    new_token: str | None


@dataclass(frozen=True)
class IssuedToken:
    """A token as created: the secret is shown this once and never stored."""

    record: TokenRecord
    secret: str


def hash_token(rt: Runtime, token: str) -> str:
    """Tokens are long random secrets (or an admin's chosen one), so a keyed fast hash is
    enough: lookups stay indexed, and without the key the database tests no guesses."""
    return rt.credentials.tokens.digest(token)


def new_secret() -> str:
    return "jy_" + secrets.token_urlsafe(TOKEN_BYTES)


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
        password = settings.admin_password
        passwords = rt.credentials.passwords
        if password and not (
            admin and admin.password_hash and passwords.verify(admin.password_hash, password)
        ):
            accounts.update_user(
                conn, user_id, {"password_hash": hash_password(rt, password), "updated": now}
            )
        if settings.admin_token:
            _register_admin_token(rt, conn, user_id, settings.admin_token, now)
        generated = new_secret() if first_start and not settings.admin_token else None
        if generated is not None:
            name = "generated at first start"
            _store_token(
                rt, conn, user_id=user_id, name=name, secret=generated, scopes=ALL_SCOPES, at=now
            )
    return Bootstrap(admin_user_id=user_id, new_token=generated)


def _register_admin_token(
    rt: Runtime, conn: Connection, user_id: int, secret: str, now: datetime
) -> None:
    """JOBYARD_ADMIN_TOKEN works after every start: stored under the current key, live even
    if a password change (or anyone) revoked it; the variable is the way to change it."""
    digest = hash_token(rt, secret)
    for stored in (digest, rt.credentials.tokens.legacy_digest(secret)):
        token_id = accounts.token_id_by_hash(conn, stored)
        if token_id is not None:
            accounts.reinstate_token(conn, token_id, digest)
            return
    name = "JOBYARD_ADMIN_TOKEN"
    _store_token(rt, conn, user_id=user_id, name=name, secret=secret, scopes=ALL_SCOPES, at=now)


def _store_token(
    rt: Runtime,
    conn: Connection,
    *,
    user_id: int,
    name: str,
    secret: str,
    scopes: frozenset[Scope],
    at: datetime,
    expires: datetime | None = None,
    job_id: int | None = None,
) -> int:
    return accounts.insert_token(
        conn,
        {
            "user_id": user_id,
            "name": name,
            "secret_hash": hash_token(rt, secret),
            "scopes": sorted(s.value for s in scopes),
            "job_id": job_id,
            "created": at,
            "expires": expires,
        },
    )


# Authentication ---------------------------------------------------------------------------


def _principal(user: UserRecord, token: TokenRecord | None) -> Principal:
    if token is None:
        return _acting_as(user, token_scopes=None)
    return _acting_as(user, token_scopes=parse_scopes(token.scopes), token_id=token.id)


def _acting_as(
    user: UserRecord,
    *,
    token_scopes: frozenset[Scope] | None,
    tenant_id: int | None = None,
    token_id: int | None = None,
    job_id: int | None = None,
) -> Principal:
    """The user, in their own tenant unless `tenant_id` is given (and then only there)."""
    role = Role(user.role)
    tenant = user.tenant_id if tenant_id is None else tenant_id
    return Principal(
        user_id=user.id,
        login=user.login,
        role=role,
        home_tenant_id=tenant,
        tenant_id=tenant,
        scopes=effective_scopes(role, token_scopes),
        token_id=token_id,
        job_id=job_id,
    )


@dataclass(frozen=True)
class TokenCheck:
    """A valid token's principal, and whether its row is due a write: `last_used`, or its
    hash from an earlier release (plain SHA-256) replaced by the keyed one."""

    principal: Principal
    touch_due: bool
    rehash: tuple[str, str] | None = None  # (the stored hash, its replacement)


def _find_token(rt: Runtime, token: str) -> tuple[tuple[TokenRecord, UserRecord] | None, bool]:
    """The token's row and user, and whether its stored hash is the legacy one."""
    with rt.db.read_one() as conn:
        found = accounts.token_by_hash(conn, hash_token(rt, token))
        if found is not None:
            return found, False
        legacy = accounts.token_by_hash(conn, rt.credentials.tokens.legacy_digest(token))
    return legacy, legacy is not None


def check_token(rt: Runtime, token: str) -> TokenCheck:
    """Read-only half of token authentication (one indexed read): the principal a token
    stands for, or Unauthenticated (revoked and expired included)."""
    if not token or len(token) > MAX_SECRET_LENGTH:
        raise Unauthenticated()
    if token.startswith(JOB_TOKEN_PREFIX):
        return TokenCheck(_job_principal(rt, token), touch_due=False)
    now = utcnow()
    found, legacy = _find_token(rt, token)
    if found is None:
        raise Unauthenticated()
    record, user = found
    if record.revoked is not None or (record.expires is not None and record.expires <= now):
        raise Unauthenticated()
    if record.job_id is not None:  # job tokens live on their runs (see _job_principal)
        raise Unauthenticated()
    due = record.last_used is None or now - record.last_used > LAST_USED_RESOLUTION
    rehash = None
    if legacy:
        rehash = (rt.credentials.tokens.legacy_digest(token), hash_token(rt, token))
    return TokenCheck(_principal(user, record), touch_due=due or legacy, rehash=rehash)


def _job_principal(rt: Runtime, token: str) -> Principal:
    """A job's token: good while its run runs, for its job alone, in its job's tenant. A
    run started by an earlier release keeps its plain SHA-256 (it dies with the run)."""
    with rt.db.read_one() as conn:
        found = accounts.run_token_owner(conn, hash_token(rt, token))
        if found is None:
            found = accounts.run_token_owner(conn, rt.credentials.tokens.legacy_digest(token))
    if found is None:
        raise Unauthenticated()
    job_id, tenant_id, user = found
    return _acting_as(user, token_scopes=JOB_TOKEN_SCOPES, tenant_id=tenant_id, job_id=job_id)


def touch_token(rt: Runtime, check: TokenCheck) -> None:
    """Record that a token was used, and store a legacy hash keyed (a write: callers do it
    only when `touch_due`)."""
    token_id = check.principal.token_id
    if token_id is not None:
        with rt.db.transaction() as conn:
            accounts.touch_token(conn, token_id, utcnow())
            if check.rehash is not None:
                old, new = check.rehash
                accounts.rehash_token(conn, token_id, old=old, new=new)


def authenticate_token(rt: Runtime, token: str) -> Principal:
    """The principal a token stands for, or Unauthenticated; records its use."""
    check = check_token(rt, token)
    if check.touch_due:
        touch_token(rt, check)
    return check.principal


def _locked_for(user: UserRecord, now: datetime) -> float:
    if user.locked_until is None or user.locked_until <= now:
        return 0.0
    return (user.locked_until - now).total_seconds()


def _too_many(login: str, wait: float) -> TooManyAttempts:
    seconds = min(LOCK_SECONDS, max(1, math.ceil(wait)))
    return TooManyAttempts(
        f"too many failed logins for {login!r}; try again in {seconds} s", retry_after=seconds
    )


def authenticate_password(rt: Runtime, login: str, password: str) -> Principal:
    """Check a login and password. Each try is counted before the (slow) hash is checked, so
    tries sent at once count too, and a locked login is refused without hashing. A login
    that does not exist costs the same hash and is counted the same way (in memory)."""
    if len(password) > MAX_SECRET_LENGTH:
        raise Unauthenticated(BAD_LOGIN)
    now = utcnow()
    with rt.db.read() as conn:
        user = accounts.find_user_by_login(conn, login)
    passwords = rt.credentials.passwords
    if user is not None:
        wait = _locked_for(user, now)
        if wait:
            raise _too_many(login, wait)
        if passwords.remembers(user.password_hash, password):
            return _logged_in(rt, user)
    tried = _reserve_try(rt, login, exists=user is not None, now=now)
    stored = tried.password_hash if tried is not None else None
    if not passwords.verify(stored, password) or tried is None:
        raise Unauthenticated(BAD_LOGIN)
    return _logged_in(rt, tried)


def _reserve_try(rt: Runtime, login: str, *, exists: bool, now: datetime) -> UserRecord | None:
    """Count a try against the login (TooManyAttempts if it is locked): its user after the
    count, or None for a login that does not exist."""
    if exists:
        until = now + timedelta(seconds=LOCK_SECONDS)
        with rt.db.transaction() as conn:
            tried = accounts.reserve_login_attempt(
                conn, login, now=now, limit=LOCK_AFTER_FAILURES, lock_until=until
            )
            current = accounts.find_user_by_login(conn, login) if tried is None else tried
        if tried is not None:
            if tried.locked_until is not None:
                logger.warning(
                    "login %r locked for %d s after repeated failures", login, LOCK_SECONDS
                )
            return tried
        if current is not None:
            raise _too_many(login, _locked_for(current, utcnow()))
    wait = rt.credentials.unknown_logins.reserve(login)
    if wait:
        raise _too_many(login, wait)
    return None


def _logged_in(rt: Runtime, user: UserRecord) -> Principal:
    """A correct password: the count of failed tries starts again."""
    if user.failed_logins or user.locked_until is not None:
        with rt.db.transaction() as conn:
            accounts.clear_failed_logins(conn, user.id)
    return _principal(user, None)


def authenticate_basic(rt: Runtime, login: str, password: str) -> Principal:
    """HTTP Basic: a login and its password, or a token as the password (login optional)."""
    if password and len(password) <= MAX_SECRET_LENGTH:
        as_token = _basic_token(rt, login, password)
        if as_token is not None:
            return as_token
    if not login:
        raise Unauthenticated(BAD_LOGIN)
    return authenticate_password(rt, login, password)


def _basic_token(rt: Runtime, login: str, password: str) -> Principal | None:
    """The principal of a token given as a Basic password, if it is one (of that login)."""
    if password.startswith(JOB_TOKEN_PREFIX):
        try:
            principal = _job_principal(rt, password)
        except Unauthenticated:
            return None  # perhaps a password that merely looks like one
        return principal if login in {"", principal.login} else None
    found, _ = _find_token(rt, password)
    if found is not None and login in {"", found[1].login}:
        return authenticate_token(rt, password)
    return None


def log_in(rt: Runtime, login: str, password: str) -> tuple[Principal, IssuedToken]:
    """CDRouter's `/authenticate`: a password login that hands back a new API token."""
    principal = authenticate_password(rt, login, password)
    now = utcnow()
    secret = new_secret()
    with rt.db.transaction() as conn:
        token_id = _store_token(
            rt,
            conn,
            user_id=principal.user_id,
            name=f"login {now:%Y-%m-%d %H:%M}",
            secret=secret,
            scopes=effective_scopes(principal.role, None),
            at=now,
            expires=now + LOGIN_TOKEN_LIFETIME,
        )
        audit.record(conn, principal, "token.create", "token", [token_id], detail={"via": "login"})
        record = accounts.get_token(conn, token_id, tenant_id=None)
    return principal, IssuedToken(record, secret)


# Job tokens -------------------------------------------------------------------------------


def new_job_tokens(count: int) -> list[str]:
    """Secrets for `count` new runs (their hashes go on the runs)."""
    return [JOB_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES) for _ in range(count)]


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
        authenticate_password(rt, actor.login, current_password)
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
) -> IssuedToken:
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
    secret = new_secret()
    with rt.db.transaction() as conn:
        owner = _target_user(conn, actor, user_id or actor.user_id)
        allowed = effective_scopes(Role(owner.role), None)
        if owner.id == actor.user_id:
            allowed &= actor.scopes
        beyond = wanted - allowed
        if beyond:
            names = ", ".join(sorted(s.value for s in beyond))
            raise Forbidden(f"a token of {owner.login!r} cannot have scope {names}")
        token_id = _store_token(
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
        return IssuedToken(accounts.get_token(conn, token_id, tenant_id=None), secret)


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


# The command line -------------------------------------------------------------------------


def console_principal(rt: Runtime, *, tenant_id: int = SYSTEM_TENANT_ID) -> Principal:
    """Who the `jobyard` command acts as: it has the database itself, so the system admin,
    in the tenant it names."""
    with rt.db.read() as conn:
        admin = accounts.find_user_by_login(conn, ADMIN_LOGIN)
        if admin is None:
            raise NotFound("no admin yet: run `jobyard db upgrade` or start the server once")
        if not accounts.tenant_exists(conn, tenant_id):
            raise NotFound(f"no such customer {tenant_id}")
    principal = _principal(admin, None)
    return choose_tenant(principal, tenant_id)


def find_user(rt: Runtime, *, login: str) -> UserRecord:
    with rt.db.read() as conn:
        user = accounts.find_user_by_login(conn, login)
    if user is None:
        raise NotFound(f"no such user {login!r}")
    return user


def role_scope_names(role: str) -> list[str]:
    """Every scope a role allows, by name."""
    return sorted(s.value for s in effective_scopes(parse_role(role), None))
