"""Tokens this process has read, remembered while the credentials epoch stays the same.

Every request proves who it is with a token, and reading the token and its user by hash,
then making records of the row, was about a third of a small request's own time. Triggers
raise the database's credentials epoch (migration 0016) in the transaction of any change
that can make a token stand for something else or for nothing (revoked, expired early,
scopes, its user's role, customer or password, deletions), whichever process makes it. A
request reads the epoch, one indexed row, and takes the token from here only if it was read
at that same epoch: a revoked token is refused at the next request, as without this cache.
Expiry and revocation are still checked on the records at each request, and unknown
tokens are never remembered. Writing a token's `last_used` (at most once a minute) raises
the epoch too, so the next request reads the token again.
"""

from __future__ import annotations

import dataclasses
import threading

from jobyard.domain.accounts import TokenRecord, UserRecord

Found = tuple[TokenRecord, UserRecord]
CAPACITY = 4096  # tokens remembered at most; the oldest go first


@dataclasses.dataclass(frozen=True)
class _Remembered:
    epoch: int
    found: Found


class TokenCache:
    """Tokens (by their stored hash) with their user, each with the epoch it was read at."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._remembered: dict[str, _Remembered] = {}

    def get(self, secret_hash: str, epoch: int) -> Found | None:
        """The token and user read at `epoch`, if remembered from then."""
        remembered = self._remembered.get(secret_hash)
        if remembered is None or remembered.epoch != epoch:
            return None
        return remembered.found

    def put(self, secret_hash: str, epoch: int, found: Found) -> None:
        with self._lock:
            self._remembered.pop(secret_hash, None)
            while len(self._remembered) >= self._capacity:
                del self._remembered[next(iter(self._remembered))]
            self._remembered[secret_hash] = _Remembered(epoch, found)

    def __len__(self) -> int:
        return len(self._remembered)
