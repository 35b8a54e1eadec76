"""Checkpoints of SQLite's write-ahead log from a thread of their own.

By default the commit that takes the log past 1,000 pages copies them into the database file
and syncs it, in the committing thread: one launch in sixty or so then took 3 to 5 ms
instead of 50 µs, about 60 % of all the time commits took, and every such launch was a
latency outlier. As SQLite's documentation suggests for such servers, the connections of a
process that runs a `Checkpointer` do not checkpoint (`wal_autocheckpoint=0`); the
checkpointer copies what the log holds every `interval` seconds, while the GIL is free for
requests (the driver releases it around its I/O). It copies most of the log while writers
go on, then the few pages they added meanwhile holding the writer's turn: a log is
rewritten from its start only by the first write after a checkpoint that copied all of it,
which commits landing during the checkpoint would prevent, so that under a steady stream
of writes the log would grow without end. Readers never wait for it. A process
without one (a short CLI command) checkpoints as SQLite does by default, and the last
connection to close a database checkpoints whatever is left.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

# Often enough that the log stays a few megabytes under a steady stream of launches, seldom
# enough that the pages a stream of commits rewrites (index leaves, the counts) are copied
# once for many commits.
INTERVAL_SECONDS = 0.25


def without_auto_checkpoints(dbapi_conn: Any, _record: Any) -> None:
    """A connection's `connect` set-up where a `Checkpointer` runs."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class Checkpointer:
    def __init__(
        self,
        engine: Engine,
        writer_turn: Callable[[], AbstractContextManager[None]],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self._engine = engine
        self._writer_turn = writer_turn
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="jobyard-sqlite-checkpoints", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, once a checkpoint under way has ended. No last one: it would wait
        for the writer's turn, which the caller or another process may hold, and the last
        connection to close the database checkpoints what is left."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the log holds into the database file: the log's pages, and how many of
        them are in the file now. Most are copied while writers go on committing; the few
        they add meanwhile, holding the writer's turn."""
        raw = self._engine.raw_connection()
        try:
            _passive_checkpoint(raw)
            with self._writer_turn():
                return _passive_checkpoint(raw)
        finally:
            raw.close()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.checkpoint()
            except Exception:
                # The next round tries again; the log only grows meanwhile.
                logger.warning("checkpoint of the SQLite log failed", exc_info=True)


def _passive_checkpoint(raw: Any) -> tuple[int, int]:
    """A checkpoint that waits for no one: it copies as much of the log as no reader still
    needs, and says so."""
    cursor = raw.cursor()
    try:
        _busy, logged, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        cursor.close()
    return int(logged), int(copied)
