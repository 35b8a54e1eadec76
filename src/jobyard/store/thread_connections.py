"""A driver connection for each thread's reads by key on SQLite, kept open between them.

A read by key runs one SELECT of about 5 µs in SQLite. Taking a pooled connection for it
and giving it back (the pool's checkout and checkin, the reset on return) cost 15 to 20 µs
more, and every request reads its token so: a thread that reads by key keeps a connection
of its own instead, taken out of the pool once. It holds no transaction between reads (a
SELECT outside a transaction is its own snapshot), so it never holds back a checkpoint or
sees an old state of the file.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import Engine


class _Kept:
    """One thread's connection. The thread's locals hold the only strong reference, so
    the connection closes when the thread ends (or at `close`, whichever comes first)."""

    __slots__ = ("__weakref__", "close", "raw")

    def __init__(self, engine: Engine) -> None:
        pooled = engine.raw_connection()
        pooled.detach()  # the pool no longer counts it, nor gives it to anyone else
        self.raw: Any = pooled.dbapi_connection
        self.close = weakref.finalize(self, pooled.close)


class ThreadConnections:
    """Each thread's own connection to `engine`'s database, opened at its first use."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._kept: weakref.WeakSet[_Kept] = weakref.WeakSet()

    def get(self) -> Any:
        """The calling thread's DBAPI connection."""
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None or not kept.close.alive:
            kept = _Kept(self._engine)
            self._local.kept = kept
            with self._lock:
                self._kept.add(kept)
        return kept.raw

    def discard(self) -> None:
        """Close the calling thread's connection (after an error: the next read opens a
        fresh one)."""
        kept: _Kept | None = self._local.__dict__.pop("kept", None)
        if kept is not None:
            kept.close()

    def close_all(self) -> None:
        with self._lock:
            kept = list(self._kept)
            self._kept.clear()
        for each in kept:
            each.close()
