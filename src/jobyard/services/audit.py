"""The audit trail: who launched, cancelled or deleted what, and who changed users and tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobyard.domain.accounts import AuditRecord
from jobyard.domain.listing import Listing
from jobyard.domain.permissions import Principal, Scope, require
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import accounts
from jobyard.store.driver import DriverStatements


def record(
    conn: DriverStatements,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_ids: Sequence[int | None],
    *,
    tenant_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One event per object acted on, by `actor` (None: jobyard itself)."""
    at = utcnow()
    tenant = tenant_id if tenant_id is not None else actor.tenant_id if actor else 1
    accounts.record(
        conn,
        [
            {
                "tenant_id": tenant,
                "at": at,
                "user_id": actor.user_id if actor else None,
                "token_id": actor.token_id if actor else None,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "detail": dict(detail or {}),
            }
            for object_id in object_ids
        ],
    )


def list_events(
    rt: Runtime, *, actor: Principal, request: Listing
) -> tuple[list[AuditRecord], int]:
    require(actor, Scope.ADMIN)
    with rt.db.read() as conn:
        return accounts.list_audit(conn, request, tenant_id=actor.tenant_id, pg=rt.pg)
