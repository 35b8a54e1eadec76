"""Custom results: any JSON object appended to a job, by the job itself or from outside,
whatever its status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jobyard.domain.models import JobResult
from jobyard.domain.permissions import Principal, Scope, require_on_job
from jobyard.errors import PayloadTooLarge
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import jobs as job_store
from jobyard.store import results as result_store

MAX_RESULT_BYTES = 64 * 1024


def append_result(
    rt: Runtime, *, actor: Principal, job_id: int, payload: Mapping[str, Any]
) -> JobResult:
    """Append a custom result (any JSON object) to a job, whatever its status."""
    require_on_job(actor, Scope.JOBS_WRITE, job_id, reporting=True)
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_RESULT_BYTES:
        raise PayloadTooLarge(f"a result payload may hold at most {MAX_RESULT_BYTES} bytes")
    with rt.db.transaction() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        result_id = result_store.insert_result(
            conn, job_id=job_id, user_id=actor.user_id, payload=payload, at=utcnow()
        )
        return next(r for r in result_store.list_results(conn, job_id) if r.id == result_id)


def list_results(rt: Runtime, *, actor: Principal, job_id: int) -> list[JobResult]:
    require_on_job(actor, Scope.JOBS_READ, job_id)
    with rt.db.read() as conn:
        job_store.get_job(conn, job_id, tenant_id=actor.tenant_id)
        return result_store.list_results(conn, job_id)
