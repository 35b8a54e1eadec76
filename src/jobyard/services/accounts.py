"""Who is calling: the bootstrap admin and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from jobyard.errors import Unauthenticated
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts
from jobyard.store.accounts import Identity

logger = logging.getLogger(__name__)

ADMIN_LOGIN = "admin"
ADMIN_ROLE = "admin"
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 512

__all__ = ["Bootstrap", "Identity", "authenticate_token", "bootstrap_admin", "hash_token"]


@dataclass(frozen=True)
class Bootstrap:
    """What start-up did about the admin; `new_token` is set only when one was generated."""

    admin_user_id: int
    new_token: str | None


def hash_token(token: str) -> str:
    """Tokens are long random secrets, so a fast hash is enough (and lookups stay indexed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "jy_" + secrets.token_urlsafe(TOKEN_BYTES)


def bootstrap_admin(rt: Runtime) -> Bootstrap:
    """Make sure the admin exists and holds a token; generate one only on first start."""
    now = utcnow()
    configured = rt.settings.admin_token
    with rt.db.transaction() as conn:
        user_id = accounts.find_user_id(conn, ADMIN_LOGIN)
        first_start = user_id is None
        if user_id is None:
            user_id = accounts.insert_user(conn, login=ADMIN_LOGIN, role=ADMIN_ROLE, at=now)
        token = configured or (new_token() if first_start else None)
        if token is not None and not accounts.token_exists(conn, hash_token(token)):
            name = "JOBYARD_ADMIN_TOKEN" if configured else "generated at first start"
            accounts.insert_token(
                conn, user_id=user_id, name=name, secret_hash=hash_token(token), at=now
            )
    generated = token if (first_start and not configured) else None
    return Bootstrap(admin_user_id=user_id, new_token=generated)


def authenticate_token(rt: Runtime, token: str) -> Identity:
    """The identity a bearer token stands for, or Unauthenticated."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated()
    with rt.db.read() as conn:
        identity = accounts.identity_for_token(conn, hash_token(token))
    if identity is None:
        raise Unauthenticated()
    return identity
