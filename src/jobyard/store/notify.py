"""Telling idle workers on other hosts that there is work: PostgreSQL LISTEN/NOTIFY.

SQLite has no such channel; there, workers in the same process are woken in memory and
workers in other processes by the doorbell (`doorbell`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from jobyard.store.driver import DriverStatements

logger = logging.getLogger(__name__)

CHANNEL = "jobyard_work"


def announce_work(conn: DriverStatements) -> None:
    """Wake listening workers when this transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


class Listener:
    """A dedicated connection that listens for work announcements."""

    def __init__(self, url: str, connect_args: Mapping[str, Any] | None = None) -> None:
        """`connect_args`: libpq parameters (see `db.Timeouts.connect_args`)."""
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._connect_args = dict(connect_args or {})
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, **self._connect_args)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def wait(self, timeout: float) -> bool:
        """True when work was announced within `timeout` seconds."""
        conn = self._connect()
        got = False
        for _ in conn.notifies(timeout=timeout, stop_after=1):
            got = True
        return got

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
