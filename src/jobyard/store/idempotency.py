"""Idempotency keys in the database: taken in a launch's transaction, read by its retries,
deleted once past their window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, literal_column, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from jobyard.store import tables

K = tables.idempotency_keys


@dataclass(frozen=True)
class StoredKey:
    fingerprint: str
    job_ids: tuple[int, ...]


def take(
    conn: Connection,
    *,
    tenant_id: int,
    key: str,
    fingerprint: str,
    now: datetime,
    expired_before: datetime,
) -> bool:
    """Take the key for this transaction's launch: True when it is new, or its earlier use
    is past the window (taken anew). A concurrent transaction that holds it makes this wait
    (PostgreSQL) until it ends; then the key is this one's only if that one rolled back."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = dialect.insert(K).values(
        tenant_id=tenant_id, key=key, fingerprint=fingerprint, job_ids=[], created=now
    )
    statement = inserted.on_conflict_do_update(
        index_elements=[K.c.tenant_id, K.c.key],
        set_={
            "fingerprint": inserted.excluded.fingerprint,
            "job_ids": inserted.excluded.job_ids,
            "created": inserted.excluded.created,
        },
        where=K.c.created < expired_before,
    ).returning(literal_column("1"))
    return conn.execute(statement).first() is not None


def read(conn: Connection, *, tenant_id: int, key: str) -> StoredKey:
    row = conn.execute(
        select(K.c.fingerprint, K.c.job_ids).where(K.c.tenant_id == tenant_id, K.c.key == key)
    ).one()
    return StoredKey(row.fingerprint, tuple(row.job_ids))


def record(conn: Connection, *, tenant_id: int, key: str, job_ids: Sequence[int]) -> None:
    conn.execute(
        update(K).where(K.c.tenant_id == tenant_id, K.c.key == key).values(job_ids=list(job_ids))
    )


def delete_expired(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` keys taken before `before`; return how many went."""
    oldest = select(K.c.tenant_id, K.c.key).where(K.c.created < before).limit(limit)
    victims = [(row.tenant_id, row.key) for row in conn.execute(oldest)]
    if victims:
        conn.execute(K.delete().where(tuple_(K.c.tenant_id, K.c.key).in_(victims)))
    return len(victims)
