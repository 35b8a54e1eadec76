"""PostgreSQL connections checked before use when they have been idle, not at every use.

A pooled connection may have died while it sat in the pool (the server restarted, an
administrator or `idle_session_timeout` ended its session): a statement on it would fail. A
ping at every checkout (SQLAlchemy's `pool_pre_ping`) finds that first, but costs a round
trip each time, and a read by key is one round trip itself: on a request that reads its
token and one object, the pings were two of the four. A connection given back less than
`IDLE_BEFORE_PING_SECONDS` ago served a statement a moment before, so it is handed out as
it is; one idle longer is pinged, and a dead one replaced (the pool opens another) before
anyone uses it. A connection that dies within that moment fails its next statement, which
the callers already treat as the database being out of reach (503, or kept and retried by
a worker) and after which the pool replaces every connection it holds.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

IDLE_BEFORE_PING_SECONDS = 1.0
_RETURNED = "jobyard_returned_at"  # monotonic seconds, in the connection's `info`


def ping_when_idle(engine: Engine) -> None:
    """Ping `engine`'s pooled connections at checkout when idle for longer than
    `IDLE_BEFORE_PING_SECONDS` (as it is when this is called)."""
    dialect, idle = engine.dialect, IDLE_BEFORE_PING_SECONDS

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
        entry.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked(
        dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        returned_at = entry.info.get(_RETURNED)
        if returned_at is None or time.monotonic() - returned_at <= idle:
            return  # just opened, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool drops this connection, and the others open since before (the server
            # went away, most likely: they went with it), and opens another.
            raise InvalidatePoolError("the pooled connection no longer answers") from error
