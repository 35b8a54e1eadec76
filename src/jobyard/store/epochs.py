"""The epochs of what a process may remember (migration 0016, services/remembered.py)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from jobyard.store import tables
from jobyard.store.key_reads import KeyReads

_EPOCH = select(tables.epochs.c.epoch).where(tables.epochs.c.name == bindparam("epoch_name"))


def read_epoch(conn: Connection | KeyReads, name: str) -> int | None:
    """The epoch `name` is at now; None if its row is missing (then nothing is remembered)."""
    row = conn.execute(_EPOCH, {"epoch_name": name}).first()
    return None if row is None else int(row.epoch)
