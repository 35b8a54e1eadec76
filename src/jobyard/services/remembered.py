"""What a process remembers between requests, for as long as the database's epoch of it
stays the same.

Every request proves who it is with a token, and every launch resolves a package (with its
device and config) into what the job will run: reading those rows and making records and a
plan of them was about a third of a small request's own time, and a sixth of a launch's.
Triggers raise an epoch of each kind (migration 0016) in the transaction of any change that
can alter them, whichever process makes it: `credentials` for tokens (revoked, expiry,
scopes, their user's role, customer or password, deletions, and `last_used`, written at most
once a minute), `catalog` for packages, devices and configs. A use reads the epoch, one
indexed row, and takes what is remembered only if it was read at that same epoch: a revoked
token is refused at its next request, and a launch after an edit uses the edited package,
as without this. Only what was found is remembered (an unknown token, a missing package
are read every time). Used on SQLite, where reading the epoch costs less than reading the
rows; on PostgreSQL both are a round trip.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

from sqlalchemy import Connection

from jobyard.store import epochs
from jobyard.store.key_reads import KeyReads

CAPACITY = 4096  # entries remembered at most; the oldest go first

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

CREDENTIALS = "credentials"
CATALOG = "catalog"


@dataclasses.dataclass(frozen=True)
class _Entry(Generic[Value]):
    epoch: int
    value: Value


class Remembered(Generic[Key, Value]):
    """Values by key, each with the epoch (of the kind `epoch_name`) it was read at."""

    def __init__(self, epoch_name: str, capacity: int = CAPACITY) -> None:
        self._epoch_name = epoch_name
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry[Value]] = {}

    def epoch(self, conn: Connection | KeyReads) -> int | None:
        """The epoch now, to read before the rows it stands for: a change committed after
        it raises it, so a row read after is never older than the epoch it is remembered at.
        None if the database has no such epoch (then nothing is remembered)."""
        return epochs.read_epoch(conn, self._epoch_name)

    @overload
    def through(self, epoch: int | None, key: Key, read: Callable[[], Value]) -> Value: ...
    @overload
    def through(
        self, epoch: int | None, key: Key, read: Callable[[], Value | None]
    ) -> Value | None: ...
    def through(
        self, epoch: int | None, key: Key, read: Callable[[], Value | None]
    ) -> Value | None:
        """The value remembered at `epoch`, else `read()`'s, remembered if it found one
        (None: nothing found, nothing remembered)."""
        if epoch is None:
            return read()
        known = self.get(key, epoch)
        if known is not None:
            return known
        value = read()
        if value is not None:
            self.put(key, epoch, value)
        return value

    def get(self, key: Key, epoch: int) -> Value | None:
        """The value read at `epoch`, if remembered from then."""
        entry = self._entries.get(key)
        if entry is None or entry.epoch != epoch:
            return None
        return entry.value

    def put(self, key: Key, epoch: int, value: Value) -> None:
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self._capacity:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(epoch, value)

    def __len__(self) -> int:
        return len(self._entries)
