"""What is stored of people and their credentials: users, tokens and audit entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ADMIN_LOGIN = "admin"  # the system admin every start makes sure of


@dataclass(frozen=True)
class UserRecord:
    id: int
    tenant_id: int
    login: str
    role: str
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    name: str
    scopes: tuple[str, ...]
    job_id: int | None
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    tenant_id: int
    at: datetime
    user_id: int | None
    token_id: int | None
    action: str
    object_type: str
    object_id: int | None
    detail: Mapping[str, Any]
