"""Tenants, users, tokens (stored only as hashes) and the audit trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard.domain import vocabulary
from jobyard.domain.accounts import AuditRecord, TokenRecord, UserRecord
from jobyard.domain.listing import Listing
from jobyard.errors import Conflict, NotFound
from jobyard.store import listing, tables
from jobyard.store.catalog import insert_row
from jobyard.store.driver import DriverStatements, RowsInsert
from jobyard.store.key_reads import KeyReads
from jobyard.store.records import RecordReader
from jobyard.store.types import UTCDateTime

U, T, A = tables.users, tables.tokens, tables.audit_events


USER_FIELDS = listing.fields(
    vocabulary.USER_FIELDS,
    {"id": U.c.id, "login": U.c.login, "role": U.c.role, "created": U.c.created},
)
TOKEN_FIELDS = listing.fields(
    vocabulary.TOKEN_FIELDS,
    {
        "id": T.c.id,
        "user_id": T.c.user_id,
        "name": T.c.name,
        "created": T.c.created,
        "expires": T.c.expires,
        "last_used": T.c.last_used,
    },
)
AUDIT_FIELDS = listing.fields(
    vocabulary.AUDIT_FIELDS,
    {
        "id": A.c.id,
        "at": A.c.at,
        "user_id": A.c.user_id,
        "action": A.c.action,
        "object_type": A.c.object_type,
        "object_id": A.c.object_id,
    },
)


user_from_row = RecordReader(UserRecord)

token_from_row = RecordReader(TokenRecord)

audit_from_row = RecordReader(AuditRecord)

# Tenants ----------------------------------------------------------------------------------


def tenant_exists(conn: Connection, tenant_id: int) -> bool:
    found = conn.execute(select(tables.tenants.c.id).where(tables.tenants.c.id == tenant_id))
    return found.first() is not None


def insert_tenant(
    conn: Connection, *, name: str, at: datetime, tenant_id: int | None = None
) -> int:
    values: dict[str, Any] = {"name": name, "created": at}
    if tenant_id is not None:
        values["id"] = tenant_id
    new_id = insert_row(conn, tables.tenants, values)
    if tenant_id is not None and conn.dialect.name == "postgresql":
        # An explicit id leaves PostgreSQL's sequence behind: move it past the ids in use.
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('tenants', 'id'), "
                "(SELECT max(id) FROM tenants))"
            )
        )
    return new_id


def list_tenants(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(tables.tenants).order_by(tables.tenants.c.id)))


# Users ------------------------------------------------------------------------------------


def find_user_by_login(conn: Connection, login: str) -> UserRecord | None:
    row = conn.execute(select(U).where(U.c.login == login)).first()
    return None if row is None else user_from_row(row)


def get_user(conn: Connection, user_id: int, *, tenant_id: int | None) -> UserRecord:
    query = select(U).where(U.c.id == user_id)
    if tenant_id is not None:
        query = query.where(U.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("no such user")
    return user_from_row(row)


def insert_user(conn: Connection, values: Mapping[str, Any]) -> int:
    """Insert a user; a taken login is a Conflict (logins are unique across customers)."""
    try:
        return insert_row(conn, U, values)
    except (Conflict, IntegrityError) as exc:
        if isinstance(exc, IntegrityError) and "unique" not in str(exc.orig).lower():
            raise
        raise Conflict(f"a user with login {values['login']!r} already exists") from None


def update_user(conn: Connection, user_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(U).where(U.c.id == user_id).values(**values))


def delete_user(conn: Connection, user_id: int) -> None:
    conn.execute(delete(U).where(U.c.id == user_id))


def list_users(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[UserRecord], int]:
    query = listing.apply(
        select(U).where(U.c.tenant_id == tenant_id), request, USER_FIELDS, pg=pg, tiebreak=U.c.id
    )
    rows, total = listing.fetch_page(conn, query, request.page)
    return [user_from_row(r) for r in rows], total


# Tokens -----------------------------------------------------------------------------------


INSERT_TOKEN = insert(T).returning(T.c.id)


def insert_token(conn: Connection, values: Mapping[str, Any]) -> int:
    return int(conn.execute(INSERT_TOKEN, dict(values)).scalar_one())


# Every authenticated request runs this: one statement, built once.
TOKEN_WITH_USER = (
    select(T, *(c.label(f"owner_{c.name}") for c in U.c))
    .join(U, U.c.id == T.c.user_id)
    .where(T.c.secret_hash == bindparam("secret_hash"))
)


def token_by_hash(
    conn: Connection | KeyReads, secret_hash: str
) -> tuple[TokenRecord, UserRecord] | None:
    row = conn.execute(TOKEN_WITH_USER, {"secret_hash": secret_hash}).first()
    if row is None:
        return None
    return token_from_row(row), user_from_row(row, prefix="owner_")


# A job token's run, while it runs: the job (for its tenant) and the user it acts as. The
# status is written into the SQL so that both databases use the index of running runs.
_RUN_TOKEN_OWNER = (
    select(
        tables.jobs.c.id.label("run_job_id"),
        tables.jobs.c.tenant_id.label("run_tenant_id"),
        *(c.label(f"owner_{c.name}") for c in U.c),
    )
    .select_from(tables.runs)
    .join(tables.jobs, tables.jobs.c.id == tables.runs.c.job_id)
    .join(U, U.c.id == tables.jobs.c.user_id)
    .where(
        tables.runs.c.token_hash == bindparam("secret_hash"),
        tables.runs.c.status == text("'running'"),
    )
)


def run_token_owner(
    conn: Connection | KeyReads, secret_hash: str
) -> tuple[int, int, UserRecord] | None:
    """The job, its tenant and its user, for the hash of a running run's token."""
    row = conn.execute(_RUN_TOKEN_OWNER, {"secret_hash": secret_hash}).first()
    if row is None:
        return None
    return row.run_job_id, row.run_tenant_id, user_from_row(row, prefix="owner_")


def token_id_by_hash(conn: Connection, secret_hash: str) -> int | None:
    """The token with this hash, revoked or not."""
    row = conn.execute(select(T.c.id).where(T.c.secret_hash == secret_hash)).first()
    return None if row is None else int(row.id)


def rehash_token(conn: Connection, token_id: int, *, old: str, new: str) -> None:
    """Replace a token's hash (once: a concurrent rehash of the same row changes nothing)."""
    conn.execute(
        update(T).where(T.c.id == token_id, T.c.secret_hash == old).values(secret_hash=new)
    )


def reinstate_token(conn: Connection, token_id: int, secret_hash: str) -> None:
    """Make a token live again under this hash: no revocation, no expiry."""
    conn.execute(
        update(T)
        .where(T.c.id == token_id)
        .values(secret_hash=secret_hash, revoked=None, expires=None)
    )


def revoke_user_tokens(
    conn: Connection, user_id: int, *, at: datetime, keep: int | None
) -> list[int]:
    """Revoke a user's live API tokens (all but `keep`); the ids revoked."""
    query = (
        update(T)
        .where(
            T.c.user_id == user_id,
            T.c.job_id.is_(None),
            T.c.revoked.is_(None),
            or_(T.c.expires.is_(None), T.c.expires > at),
        )
        .values(revoked=at)
        .returning(T.c.id)
    )
    if keep is not None:
        query = query.where(T.c.id != keep)
    return sorted(int(i) for i in conn.execute(query).scalars())


def get_token(conn: Connection, token_id: int, *, tenant_id: int | None) -> TokenRecord:
    query = select(T).join(U, U.c.id == T.c.user_id).where(T.c.id == token_id)
    if tenant_id is not None:
        query = query.where(U.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("no such token")
    return token_from_row(row)


def list_tokens(
    conn: Connection,
    request: Listing,
    *,
    tenant_id: int,
    user_id: int | None,
    pg: bool,
) -> tuple[list[TokenRecord], int]:
    query = (
        select(T)
        .join(U, U.c.id == T.c.user_id)
        .where(U.c.tenant_id == tenant_id, T.c.job_id.is_(None), T.c.revoked.is_(None))
    )
    if user_id is not None:
        query = query.where(T.c.user_id == user_id)
    query = listing.apply(query, request, TOKEN_FIELDS, pg=pg, tiebreak=T.c.id)
    rows, total = listing.fetch_page(conn, query, request.page)
    return [token_from_row(r) for r in rows], total


def revoke_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(update(T).where(T.c.id == token_id).values(revoked=at))


TOUCH_TOKEN = update(T).where(T.c.id == bindparam("token_id")).values(last_used=bindparam("at"))


def touch_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(TOUCH_TOKEN, {"token_id": token_id, "at": at})


# Audit ------------------------------------------------------------------------------------


INSERT_AUDIT_ROWS = RowsInsert(
    A, ("tenant_id", "at", "user_id", "token_id", "action", "object_type", "object_id", "detail")
)


def record(conn: DriverStatements, entries: Sequence[Mapping[str, Any]]) -> None:
    if entries:
        INSERT_AUDIT_ROWS.execute_mappings(conn, entries)


def list_audit(
    conn: Connection, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[AuditRecord], int]:
    query = listing.apply(
        select(A).where(A.c.tenant_id == tenant_id), request, AUDIT_FIELDS, pg=pg, tiebreak=A.c.id
    )
    rows, total = listing.fetch_page(conn, query, request.page)
    return [audit_from_row(r) for r in rows], total


def user_has_objects(conn: Connection, user_id: int) -> bool:
    """Whether deleting the user would orphan jobs or catalog objects it created."""
    for table in (tables.jobs, tables.packages, tables.devices, tables.configs):
        if conn.execute(select(table.c.id).where(table.c.user_id == user_id).limit(1)).first():
            return True
    return False


def reserve_login_attempt(
    conn: Connection, login: str, *, now: datetime, limit: int, lock_until: datetime
) -> UserRecord | None:
    """Count a try against a login that is not locked, in one statement (so tries sent at
    once all count), locking it on the `limit`-th; the user after the count, or None if the
    login does not exist or is locked."""
    reaching = U.c.failed_logins + 1 >= limit
    result = conn.execute(
        update(U)
        .where(U.c.login == login, or_(U.c.locked_until.is_(None), U.c.locked_until <= now))
        .values(
            failed_logins=case((reaching, 0), else_=U.c.failed_logins + 1),
            locked_until=case((reaching, literal(lock_until, UTCDateTime())), else_=None),
        )
        .returning(*U.c)
    )
    row = result.first()
    return None if row is None else user_from_row(row)


def clear_failed_logins(conn: Connection, user_id: int) -> None:
    conn.execute(update(U).where(U.c.id == user_id).values(failed_logins=0, locked_until=None))
