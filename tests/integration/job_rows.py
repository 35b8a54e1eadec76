"""Job rows written straight into the table, for tests of the schema and its triggers."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def job_row(
    *, tenant_id: int, user_id: int, status: str, at: datetime, package_name: str = "p"
) -> dict[str, Any]:
    """A complete `jobs` row of a `true` command job, created (and due) at `at`."""
    return {
        "tenant_id": tenant_id,
        "status": status,
        "package_name": package_name,
        "kind": "command",
        "options": {},
        "tags": [],
        "context": {},
        "argv": ["true"],
        "env": {},
        "interfaces": [],
        "interface_names": [],
        "run_at": at,
        "user_id": user_id,
        "created": at,
        "updated": at,
    }
