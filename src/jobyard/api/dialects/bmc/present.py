"""A BMC job run as BMC shows it: the vendor's status names and job types, the field order
of BMC's sample, and its times and output."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jobyard.domain.models import PackageKind, Run
from jobyard.domain.statuses import RunStatus
from jobyard.services.read_models import RunView

ROOT = "job-run"
OUTPUT_CAP = 64 * 1024

STATUS_NAMES: dict[RunStatus, str] = {
    RunStatus.RUNNING: "Running",
    RunStatus.COMPLETED: "Complete",
    RunStatus.FAILED: "Problem",
    RunStatus.TIMED_OUT: "Problem",
    RunStatus.LOST: "Problem",
    RunStatus.CANCELLED: "Cancelled",
}
JOB_TYPES: dict[PackageKind, str] = {
    PackageKind.COMMAND: "automation",
    PackageKind.EXTERNAL: "notification",
}
STEP_KEYS = ("aasm_state", "id", "name")


def bmc_time(value: datetime) -> str:
    """ISO 8601, whole seconds, with its offset (UTC here): `2012-09-04T19:34:44+00:00`."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _ordered(value: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The known keys first, in order (null when missing), then the others alphabetically."""
    out = {key: value.get(key) for key in known}
    out |= {key: value[key] for key in sorted(value) if key not in out}
    return out


def _step(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    step = _ordered(value, (*STEP_KEYS, "request"))
    request = step["request"]
    step["request"] = _ordered(request, STEP_KEYS) if isinstance(request, Mapping) else None
    return step


def results_path(run: Run) -> str:
    return f"/api/v1/jobs/{run.job_id}/log/?attempt={run.attempt}"


def _text(head: bytes) -> str | None:
    """The start of a stream as text, null when empty; an incomplete character cut off by
    the cap is dropped, not replaced."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head[:OUTPUT_CAP])
    return text or None


def job_run(view: RunView) -> dict[str, Any]:
    """A job run in the sample's key order (datetimes left to the writer)."""
    run, job = view.run, view.job
    return {
        "automation_id": job.package_id,
        "created_at": run.started,
        "finished_at": run.finished,
        "id": run.id,
        "job_type": JOB_TYPES[job.kind],
        "process_id": run.process_id,
        "results_path": results_path(run),
        "run_key": run.run_key,
        "started_at": run.started,
        "status": STATUS_NAMES[run.status],
        "stderr": _text(view.stderr),
        "stdout": _text(view.stdout),
        "updated_at": run.finished or run.started,
        "step": _step(job.context.get("step")),
    }
