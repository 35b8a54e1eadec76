"""How a request proves who it is: an API token, a login and password (counted and locked
out after repeated failures), HTTP Basic, or a running job's own token; and who the command
line acts as."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobyard.domain.accounts import ADMIN_LOGIN, TokenRecord, UserRecord
from jobyard.domain.permissions import (
    JOB_TOKEN_SCOPES,
    SYSTEM_TENANT_ID,
    Principal,
    Role,
    Scope,
    choose_tenant,
    effective_scopes,
    parse_scopes,
)
from jobyard.errors import NotFound, TooManyAttempts, Unauthenticated
from jobyard.services import audit, tokens
from jobyard.services.credentials import LOCK_AFTER_FAILURES, LOCK_SECONDS
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts

logger = logging.getLogger(__name__)

LOGIN_TOKEN_LIFETIME = timedelta(days=30)
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used at most this often per token
BAD_LOGIN = "invalid username or password"


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


def _find_token(
    rt: Runtime, token: str, hashed: str
) -> tuple[tuple[TokenRecord, UserRecord] | None, bool]:
    """The token's row and user (`hashed`: its keyed hash), and whether its stored hash is
    the legacy one."""
    cache = rt.tokens_read
    with rt.db.read_key() as conn:
        if cache is None:
            found = accounts.token_by_hash(conn, hashed)
        else:
            epoch = cache.epoch(conn)
            found = cache.through(epoch, hashed, lambda: accounts.token_by_hash(conn, hashed))
        if found is not None:
            return found, False
        legacy = accounts.token_by_hash(conn, rt.credentials.tokens.legacy_digest(token))
    return legacy, legacy is not None


def check_token(rt: Runtime, token: str) -> TokenCheck:
    """Read-only half of token authentication (one indexed read): the principal a token
    stands for, or Unauthenticated (revoked and expired included)."""
    if not token or len(token) > tokens.MAX_SECRET_LENGTH:
        raise Unauthenticated()
    if token.startswith(tokens.JOB_TOKEN_PREFIX):
        return TokenCheck(_job_principal(rt, token), touch_due=False)
    now = utcnow()
    hashed = tokens.hash_token(rt, token)
    found, legacy = _find_token(rt, token, hashed)
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
        rehash = (rt.credentials.tokens.legacy_digest(token), hashed)
    return TokenCheck(_principal(user, record), touch_due=due or legacy, rehash=rehash)


def _job_principal(rt: Runtime, token: str) -> Principal:
    """A job's token: good while its run runs, for its job alone, in its job's tenant. A
    run started by an earlier release keeps its plain SHA-256 (it dies with the run)."""
    with rt.db.read_key() as conn:
        found = accounts.run_token_owner(conn, tokens.hash_token(rt, token))
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
    if len(password) > tokens.MAX_SECRET_LENGTH:
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
    if password and len(password) <= tokens.MAX_SECRET_LENGTH:
        as_token = _basic_token(rt, login, password)
        if as_token is not None:
            return as_token
    if not login:
        raise Unauthenticated(BAD_LOGIN)
    return authenticate_password(rt, login, password)


def _basic_token(rt: Runtime, login: str, password: str) -> Principal | None:
    """The principal of a token given as a Basic password, if it is one (of that login)."""
    if password.startswith(tokens.JOB_TOKEN_PREFIX):
        try:
            principal = _job_principal(rt, password)
        except Unauthenticated:
            return None  # perhaps a password that merely looks like one
        return principal if login in {"", principal.login} else None
    found, _ = _find_token(rt, password, tokens.hash_token(rt, password))
    if found is not None and login in {"", found[1].login}:
        return authenticate_token(rt, password)
    return None


def log_in(
    rt: Runtime, login: str, password: str, *, via: str = "login"
) -> tuple[Principal, tokens.IssuedToken]:
    """A password login that hands back a new token of the login's lifetime: CDRouter's
    `/authenticate` (an API token), or the dashboard's session (`via`: what it is for)."""
    principal = authenticate_password(rt, login, password)
    now = utcnow()
    secret = tokens.new_secret()
    with rt.db.transaction() as conn:
        token_id = tokens.store_token(
            rt,
            conn,
            user_id=principal.user_id,
            name=f"{via} {now:%Y-%m-%d %H:%M}",
            secret=secret,
            scopes=effective_scopes(principal.role, None),
            at=now,
            expires=now + LOGIN_TOKEN_LIFETIME,
        )
        audit.record(conn, principal, "token.create", "token", [token_id], detail={"via": via})
        record = accounts.get_token(conn, token_id, tenant_id=None)
    return principal, tokens.IssuedToken(record, secret)


# Job tokens -------------------------------------------------------------------------------


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
