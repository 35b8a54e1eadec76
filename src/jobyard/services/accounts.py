"""Accounts: tenants, users with argon2 passwords, scoped API tokens, and how a request is
authenticated (token, password, or a job's own token)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

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
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts, listing
from jobyard.store.accounts import TokenRecord, UserRecord

logger = logging.getLogger(__name__)

ADMIN_LOGIN = "admin"
SYSTEM_TENANT_NAME = "system"
TOKEN_BYTES = 32
MAX_SECRET_LENGTH = 512
# A job token names what it is, so that its look-up goes to the runs.
JOB_TOKEN_PREFIX = "jyj_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD_LENGTH = 8
LOGIN_TOKEN_LIFETIME = timedelta(days=30)
LOCK_AFTER_FAILURES = 5
LOCK_SECONDS = 60
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used at most this often per token
VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 10_000

_hasher = PasswordHasher()


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


def hash_token(token: str) -> str:
    """Tokens are long random secrets, so a fast hash is enough (and lookups stay indexed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return "jy_" + secrets.token_urlsafe(TOKEN_BYTES)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


class _VerifiedPasswords:
    """Argon2 is slow on purpose; remember recent successes so that HTTP Basic clients do
    not pay it on every request. Keyed by the stored hash, so a password change forgets."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def check(self, password_hash: str, password: str) -> bool:
        key = (password_hash, hashlib.sha256(password.encode()).hexdigest())
        with self._lock:
            if self._seen.get(key, 0.0) > time.monotonic():
                return True
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        with self._lock:
            if len(self._seen) > VERIFIED_CACHE_SIZE:
                self._seen.clear()
            self._seen[key] = time.monotonic() + VERIFIED_CACHE_SECONDS
        return True


_verified = _VerifiedPasswords()


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
        if password and not (
            admin and admin.password_hash and _verified.check(admin.password_hash, password)
        ):
            accounts.update_user(
                conn, user_id, {"password_hash": hash_password(password), "updated": now}
            )
        secret = settings.admin_token or (new_secret() if first_start else None)
        if secret is not None and not accounts.token_exists(conn, hash_token(secret)):
            name = "JOBYARD_ADMIN_TOKEN" if settings.admin_token else "generated at first start"
            _store_token(conn, user_id=user_id, name=name, secret=secret, scopes=ALL_SCOPES, at=now)
    generated = secret if first_start and not settings.admin_token else None
    return Bootstrap(admin_user_id=user_id, new_token=generated)


def _store_token(
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
            "secret_hash": hash_token(secret),
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
    """A valid token's principal, and whether its `last_used` is due to be written."""

    principal: Principal
    touch_due: bool


def check_token(rt: Runtime, token: str) -> TokenCheck:
    """Read-only half of token authentication (one indexed read): the principal a token
    stands for, or Unauthenticated (revoked and expired included)."""
    if not token or len(token) > MAX_SECRET_LENGTH:
        raise Unauthenticated()
    if token.startswith(JOB_TOKEN_PREFIX):
        return TokenCheck(_job_principal(rt, token), touch_due=False)
    now = utcnow()
    with rt.db.read_one() as conn:
        found = accounts.token_by_hash(conn, hash_token(token))
    if found is None:
        raise Unauthenticated()
    record, user = found
    if record.revoked is not None or (record.expires is not None and record.expires <= now):
        raise Unauthenticated()
    if record.job_id is not None:  # job tokens live on their runs (see _job_principal)
        raise Unauthenticated()
    due = record.last_used is None or now - record.last_used > LAST_USED_RESOLUTION
    return TokenCheck(_principal(user, record), touch_due=due)


def _job_principal(rt: Runtime, token: str) -> Principal:
    """A job's token: good while its run runs, for its job alone, in its job's tenant."""
    with rt.db.read_one() as conn:
        found = accounts.run_token_owner(conn, hash_token(token))
    if found is None:
        raise Unauthenticated()
    job_id, tenant_id, user = found
    return _acting_as(user, token_scopes=JOB_TOKEN_SCOPES, tenant_id=tenant_id, job_id=job_id)


def touch_token(rt: Runtime, check: TokenCheck) -> None:
    """Record that a token was used (a write: callers do it only when `touch_due`)."""
    if check.principal.token_id is not None:
        with rt.db.transaction() as conn:
            accounts.touch_token(conn, check.principal.token_id, utcnow())


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


def authenticate_password(rt: Runtime, login: str, password: str) -> Principal:
    """Check a login and password; repeated failures lock the login for a while."""
    now = utcnow()
    with rt.db.read() as conn:
        user = accounts.find_user_by_login(conn, login)
    if user is None or not user.password_hash or len(password) > MAX_SECRET_LENGTH:
        raise Unauthenticated("invalid username or password")
    wait = _locked_for(user, now)
    if wait:
        raise TooManyAttempts(
            f"too many failed logins for {login!r}; try again in {int(wait) + 1} s",
            retry_after=int(wait) + 1,
        )
    if not _verified.check(user.password_hash, password):
        _count_failure(rt, user, now)
        raise Unauthenticated("invalid username or password")
    if user.failed_logins:
        with rt.db.transaction() as conn:
            accounts.update_user(conn, user.id, {"failed_logins": 0, "locked_until": None})
    return _principal(user, None)


def _count_failure(rt: Runtime, user: UserRecord, now: datetime) -> None:
    """Count in the database (attempts arrive at once), and lock at the threshold."""
    with rt.db.transaction() as conn:
        failures = accounts.count_failed_login(conn, user.id)
        if failures >= LOCK_AFTER_FAILURES:
            until = now + timedelta(seconds=LOCK_SECONDS)
            accounts.update_user(conn, user.id, {"failed_logins": 0, "locked_until": until})
            logger.warning(
                "login %r locked for %d s after repeated failures", user.login, LOCK_SECONDS
            )


def authenticate_basic(rt: Runtime, login: str, password: str) -> Principal:
    """HTTP Basic: a login and its password, or a token as the password (login optional)."""
    if password and len(password) <= MAX_SECRET_LENGTH:
        as_token = _basic_token(rt, login, password)
        if as_token is not None:
            return as_token
    if not login:
        raise Unauthenticated("invalid username or password")
    return authenticate_password(rt, login, password)


def _basic_token(rt: Runtime, login: str, password: str) -> Principal | None:
    """The principal of a token given as a Basic password, if it is one (of that login)."""
    if password.startswith(JOB_TOKEN_PREFIX):
        try:
            principal = _job_principal(rt, password)
        except Unauthenticated:
            return None  # perhaps a password that merely looks like one
        return principal if login in {"", principal.login} else None
    with rt.db.read_one() as conn:
        found = accounts.token_by_hash(conn, hash_token(password))
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
        "password_hash": hash_password(password) if password else None,
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


def list_users(
    rt: Runtime, *, actor: Principal, request: listing.Listing
) -> tuple[list[UserRecord], int]:
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
) -> UserRecord:
    """Admins change roles and passwords; a user may change their own password by giving the
    current one."""
    own = user_id == actor.user_id and actor.job_id is None
    if not own or role is not None:
        require(actor, Scope.ADMIN)
    now = utcnow()
    with rt.db.transaction() as conn:
        user = _target_user(conn, actor, user_id)
        values: dict[str, object] = {"updated": now}
        if role is not None:
            parse_role(role)
            if user.login == ADMIN_LOGIN and user.tenant_id == SYSTEM_TENANT_ID and role != "admin":
                raise Conflict("the system admin keeps the admin role")
            values["role"] = role
        if password is not None:
            if own and Scope.ADMIN not in actor.scopes:
                _check_current(user, current_password)
            values |= {
                "password_hash": hash_password(password),
                "failed_logins": 0,
                "locked_until": None,
            }
        accounts.update_user(conn, user_id, values)
        changed = sorted(k for k in values if k != "updated")
        audit.record(conn, actor, "user.edit", "user", [user_id], detail={"changed": changed})
        return accounts.get_user(conn, user_id, tenant_id=None)


def _check_current(user: UserRecord, current_password: str | None) -> None:
    if not current_password or not user.password_hash:
        raise ValidationFailed("current_password is required to change your own password")
    if not _verified.check(user.password_hash, current_password):
        raise Forbidden("the current password is wrong")


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
            conn, user_id=owner.id, name=name, secret=secret, scopes=wanted, at=now, expires=expires
        )
        audit.record(conn, actor, "token.create", "token", [token_id], detail={"name": name})
        return IssuedToken(accounts.get_token(conn, token_id, tenant_id=None), secret)


def list_tokens(
    rt: Runtime, *, actor: Principal, request: listing.Listing
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
