"""API tokens' secrets: made, hashed with the server's key and stored; and the secrets that
each run of a job reports on itself with."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from jobyard.domain.accounts import TokenRecord
from jobyard.domain.permissions import Scope
from jobyard.services.runtime import Runtime
from jobyard.store import accounts

TOKEN_BYTES = 32
MAX_SECRET_LENGTH = 512
# A job token names what it is, so that its look-up goes to the runs.
JOB_TOKEN_PREFIX = "jyj_"  # noqa: S105 (a prefix, not a secret)


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


def store_token(
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


def new_job_tokens(count: int) -> list[str]:
    """Secrets for `count` new runs (their hashes go on the runs)."""
    return [JOB_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES) for _ in range(count)]


def is_run_token(rt: Runtime, secret: str, token_hash: str) -> bool:
    """Whether `secret` is the token of the run that stores `token_hash` (keyed, or plain
    SHA-256 for a run started by an earlier release)."""
    keys = rt.credentials.tokens
    return any(
        hmac.compare_digest(digest, token_hash)
        for digest in (keys.digest(secret), keys.legacy_digest(secret))
    )
