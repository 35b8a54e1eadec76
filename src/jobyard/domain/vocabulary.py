"""The API's vocabulary for its resources: the fields each list can be filtered and sorted
by (with the kind that says how a value parses), and what is said when an object is not
there. The store maps each of these names to a column; it may not add or drop one."""

from __future__ import annotations

from collections.abc import Mapping

from jobyard.domain.filters import FieldKind

_I, _S, _B, _D, _A = (
    FieldKind.INTEGER,
    FieldKind.STRING,
    FieldKind.BOOLEAN,
    FieldKind.DATETIME,
    FieldKind.ARRAY,
)

Kinds = Mapping[str, FieldKind]

_JOB_OPTIONS: Kinds = {"begin_at": _S, "end_at": _S, "extra_cli_args": _S}
JOB_FIELDS: Kinds = {
    "id": _I,
    "status": _S,
    "active": _B,
    "package_id": _I,
    "package_name": _S,
    "device_id": _I,
    "device_name": _S,
    "target_device_id": _I,
    "config_id": _I,
    "config_name": _S,
    "result_id": _I,
    "user_id": _I,
    "created": _D,
    "updated": _D,
    "run_at": _D,
    "started": _D,
    "finished": _D,
    "automatic": _B,
    "priority": _I,
    "exit_code": _I,
    "kind": _S,
    "tags": _A,
    "options.tags": _A,
    "interface_names": _A,
    # The options' members, by their full names and (as CDRouter allows) at top level too.
    **{f"options.{name}": kind for name, kind in _JOB_OPTIONS.items()},
    **_JOB_OPTIONS,
}

RUN_FIELDS: Kinds = {
    "id": _I,
    "job_id": _I,
    "attempt": _I,
    "run_key": _I,
    "status": _S,
    "worker": _S,
    "process_id": _I,
    "started": _D,
    "spawned": _D,
    "finished": _D,
    "exit_code": _I,
    # Of the run's job (runs are always listed joined to their job):
    "running": _B,
    "kind": _S,
    "package_id": _I,
    "user_id": _I,
    "step_id": _I,
}

_CATALOG_FIELDS: Kinds = {
    "id": _I,
    "name": _S,
    "description": _S,
    "user_id": _I,
    "created": _D,
    "updated": _D,
}
PACKAGE_FIELDS: Kinds = {
    **_CATALOG_FIELDS,
    "kind": _S,
    "tags": _A,
    "config_id": _I,
    "device_id": _I,
    "timeout": _I,
    "max_attempts": _I,
    "note": _S,
    "testlist": _A,
    "use_as_testlist": _B,
}
DEVICE_FIELDS: Kinds = _CATALOG_FIELDS
CONFIG_FIELDS: Kinds = _CATALOG_FIELDS

SCHEDULE_FIELDS: Kinds = {
    "id": _I,
    "name": _S,
    "description": _S,
    "package_id": _I,
    "device_id": _I,
    "config_id": _I,
    "cron": _S,
    "interval": _I,
    "timezone": _S,
    "misfire": _S,
    "skip_if_running": _B,
    "paused": _B,
    "next_run": _D,
    "last_fire_time": _D,
    "user_id": _I,
    "created": _D,
    "updated": _D,
}

WEBHOOK_FIELDS: Kinds = {
    "id": _I,
    "url": _S,
    "description": _S,
    "package_id": _I,
    "enabled": _B,
    "consecutive_failures": _I,
    "user_id": _I,
    "created": _D,
    "updated": _D,
}

USER_FIELDS: Kinds = {"id": _I, "login": _S, "role": _S, "created": _D}
TOKEN_FIELDS: Kinds = {
    "id": _I,
    "user_id": _I,
    "name": _S,
    "created": _D,
    "expires": _D,
    "last_used": _D,
}
AUDIT_FIELDS: Kinds = {
    "id": _I,
    "at": _D,
    "user_id": _I,
    "action": _S,
    "object_type": _S,
    "object_id": _I,
}

NO_SUCH_JOB = "no such Job"
NO_SUCH_RUN = "no such run"
NOT_FOUND_MESSAGES: Mapping[str, str] = {
    "tenants": "no such customer",
    "users": "no such user",
    "devices": "no such device",
    "configs": "no such config",
    "packages": "no such package",
    "schedules": "no such schedule",
    "webhooks": "no such webhook",
    "webhook_deliveries": "no such delivery",
}
