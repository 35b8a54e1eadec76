"""Users and API tokens (secrets are stored only as hashes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from jobyard.store import tables

U, T = tables.users, tables.tokens


@dataclass(frozen=True)
class Identity:
    """Who a request acts as."""

    user_id: int
    login: str
    role: str
    token_id: int | None


def find_user_id(conn: Connection, login: str) -> int | None:
    return conn.execute(select(U.c.id).where(U.c.login == login)).scalar_one_or_none()


def insert_user(conn: Connection, *, login: str, role: str, at: datetime) -> int:
    query = insert(U).values(login=login, role=role, created=at).returning(U.c.id)
    return int(conn.execute(query).scalar_one())


def token_exists(conn: Connection, secret_hash: str) -> bool:
    query = select(T.c.id).where(T.c.secret_hash == secret_hash)
    return conn.execute(query).first() is not None


def insert_token(
    conn: Connection, *, user_id: int, name: str, secret_hash: str, at: datetime
) -> int:
    query = (
        insert(T)
        .values(user_id=user_id, name=name, secret_hash=secret_hash, created=at)
        .returning(T.c.id)
    )
    return int(conn.execute(query).scalar_one())


def identity_for_token(conn: Connection, secret_hash: str) -> Identity | None:
    query = (
        select(T.c.id, U.c.id.label("user_id"), U.c.login, U.c.role)
        .join(U, U.c.id == T.c.user_id)
        .where(T.c.secret_hash == secret_hash)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    return Identity(user_id=row.user_id, login=row.login, role=row.role, token_id=row.id)


def touch_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(update(T).where(T.c.id == token_id).values(last_used=at))
