"""Request schemas turned into service inputs, with CDRouter's conventions for ids and times."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobyard.api.native import schemas
from jobyard.api.params import reference_id
from jobyard.domain.filters import parse_datetime
from jobyard.domain.models import JobOptions, Testvar
from jobyard.errors import ValidationFailed
from jobyard.jsontext import dumps_bytes
from jobyard.repeats import map_repeats
from jobyard.services.jobs import JobEdit, LaunchRequest

PACKAGE_COLUMNS = {
    "timeout": "timeout_seconds",
    "retry_delay": "retry_delay_seconds",
    "concurrency": "concurrency_limit",
}


def run_at(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"invalid run_at {value!r}: expected an RFC 3339 date-time")
    return parse_datetime(value, name="run_at")


def job_options(o: schemas.OptionsIn | None) -> JobOptions:
    if o is None:
        return JobOptions()
    testvars = None
    if o.testvars is not None:
        testvars = tuple(
            Testvar(t.name, t.value or "", t.group or "", t.action) for t in o.testvars
        )
    return JobOptions(
        tags=None if o.tags is None else tuple(o.tags),
        skip_tests=None if o.skip_tests is None else tuple(o.skip_tests),
        begin_at=o.begin_at or "",
        end_at=o.end_at or "",
        testvars=testvars,
        extra_cli_args=o.extra_cli_args or "",
    )


def launch_request(body: schemas.JobLaunchIn, *, package_required: bool = True) -> LaunchRequest:
    package_id = reference_id(body.package_id, "package_id")
    if package_id is None and package_required:
        raise ValidationFailed("package_id is required", field="package_id")
    return LaunchRequest(
        package_id=package_id or 0,
        device_id=reference_id(body.device_id, "device_id"),
        config_id=reference_id(body.config_id, "config_id"),
        options=job_options(body.options),
        run_at=run_at(body.run_at),
        context=body.context or {},
        priority=body.priority or 0,
    )


def launch_requests(items: Sequence[schemas.JobLaunchIn]) -> list[LaunchRequest]:
    """A bulk launch's requests: the same items in a row share one (they are read-only)."""
    return map_repeats(launch_request, items, same=_same_item)


# Fields taken as any JSON value and checked by their type: 1, 1.0 and true are equal in
# Python but not the same reference (only the first is one).
_UNTYPED_FIELDS = operator.attrgetter("package_id", "device_id", "config_id", "run_at")


def _same_item(one: schemas.JobLaunchIn, other: schemas.JobLaunchIn) -> bool:
    """Equal, and in what is kept as given (context) or checked by type, equal as JSON."""
    return (
        one == other
        and list(map(type, _UNTYPED_FIELDS(one))) == list(map(type, _UNTYPED_FIELDS(other)))
        and (one.context is None or dumps_bytes(one.context) == dumps_bytes(other.context))
    )


def _edit_reference(value: Any, name: str) -> int | None:
    """PATCH references: null keeps the value, "0" means the package's own (given as 0)."""
    if value is None:
        return None
    return reference_id(value, name) or 0


def job_edit(body: schemas.JobEditIn) -> JobEdit:
    return JobEdit(
        package_id=_edit_reference(body.package_id, "package_id") or None,
        device_id=_edit_reference(body.device_id, "device_id"),
        config_id=_edit_reference(body.config_id, "config_id"),
        options=None if body.options is None else job_options(body.options),
        run_at=run_at(body.run_at),
        priority=body.priority,
    )


def package_values(body: schemas.PackageIn) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    for name in ("config_id", "device_id"):
        if name in values:
            values[name] = reference_id(values[name], name)
    if values.get("timeout") == 0:
        values["timeout"] = None
    if values.get("concurrency") == 0:
        values["concurrency"] = None
    return {PACKAGE_COLUMNS.get(k, k): v for k, v in values.items()}


def require_name(values: dict[str, Any]) -> None:
    if not values.get("name"):
        raise ValidationFailed("name is required", field="name")
