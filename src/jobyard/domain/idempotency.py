"""Idempotency keys as pure rules: what a key may be, how long it holds, and the fingerprint
that tells a retry of the same request from another request under the same key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jobyard.errors import ValidationFailed

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
WINDOW = timedelta(hours=24)  # a key answers its first result this long, then is forgotten


@dataclass(frozen=True)
class Idempotency:
    """A request's key (per customer) and the fingerprint of what it asks."""

    key: str
    fingerprint: str


def checked_key(raw: str) -> str:
    """A key: 1 to 255 printable ASCII characters (a UUID is the usual choice)."""
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise ValidationFailed(
            f"invalid {HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters", field=HEADER
        )
    return key


def fingerprint(operation: str, query: dict[str, list[str]], body: Any) -> str:
    """The SHA-256 of the request in a canonical form (keys sorted, no spacing), so that the
    same body sent again with its keys in another order or spaced otherwise is the same
    request, and anything else is not."""
    canonical = json.dumps(
        {"operation": operation, "query": query, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def idempotency(
    raw_key: str, operation: str, query: dict[str, list[str]], body: Any
) -> Idempotency:
    return Idempotency(checked_key(raw_key), fingerprint(operation, query, body))
