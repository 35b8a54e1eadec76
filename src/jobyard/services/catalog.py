"""Use cases for what jobs are made from: packages (what runs), devices and configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import arguments, sandbox, templates
from jobyard.domain.listing import Listing
from jobyard.domain.models import Config, Device, Package, PackageKind
from jobyard.domain.permissions import Principal, Scope, require, require_run_definer
from jobyard.domain.retention import Retention
from jobyard.domain.run_end import Backoff
from jobyard.errors import Conflict, ValidationFailed
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, tables
from jobyard.store import jobs as job_store
from jobyard.store import retention as retention_store

DEVICE_IN_USE = "the device is used by a package or a schedule; change those first"
CONFIG_IN_USE = "the config is used by a package or a schedule; change those first"
PACKAGE_IN_USE = (
    "the package is in use (a schedule launches it, or a webhook is for its jobs); delete those"
    " first"
)


def _check_references(conn: Connection, values: Mapping[str, Any], tenant_id: int) -> None:
    if values.get("config_id") is not None:
        catalog.get_config(conn, values["config_id"], tenant_id=tenant_id)
    if values.get("device_id") is not None:
        catalog.get_device(conn, values["device_id"], tenant_id=tenant_id)


def _check_package(values: Mapping[str, Any]) -> None:
    """Rules a package must keep whatever edits it goes through."""
    if values["kind"] == PackageKind.COMMAND.value and not values["command"]:
        raise ValidationFailed("a command package needs a non-empty command", field="command")
    templates.template_variables(values["command"])  # syntax only: names resolve at launch
    templates.template_variables(list(values["env"].values()))
    arguments.parse_allowed_args(values["allowed_args"])
    for name in values["env"]:
        if not name or "=" in name or "\x00" in name:
            raise ValidationFailed(f"invalid environment variable name {name!r}", field="env")
    sandbox.checked_switches(values["sandbox"])
    _check_retries(values)
    Retention(values["keep_days"], values["keep_last"], values["output_days"]).check()
    positive, negative = values["positive_results"], values["negative_results"] or []
    if len(set(positive)) != len(positive) or len(set(negative)) != len(negative):
        raise ValidationFailed("result options must not repeat")
    if set(positive) & set(negative):
        raise ValidationFailed("a result cannot be both positive and negative")


def _retention_changed(conn: Connection, actor: Principal, values: Mapping[str, Any]) -> None:
    """A package's own retention given: its customer's output is swept from the start again."""
    if any(values.get(name) is not None for name in tables.RETENTION_FIELDS):
        retention_store.forget_marks(conn, actor.tenant_id)


def _check_retries(values: Mapping[str, Any]) -> None:
    try:
        Backoff(values["retry_backoff"])
    except ValueError:
        raise ValidationFailed(
            "retry_backoff must be fixed or exponential", field="retry_backoff"
        ) from None
    if not 0 <= values["retry_jitter"] <= 1:
        raise ValidationFailed("retry_jitter must be from 0 to 1", field="retry_jitter")


PACKAGE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "kind": PackageKind.COMMAND.value,
    "command": [],
    "env": {},
    "timeout_seconds": None,
    "max_attempts": 1,
    "retry_delay_seconds": 0.0,
    "rerun_lost": True,
    "retry_backoff": Backoff.FIXED.value,
    "retry_delay_max_seconds": None,
    "retry_jitter": 0.0,
    "keep_days": None,
    "keep_last": None,
    "output_days": None,
    "concurrency_limit": None,
    "config_id": None,
    "device_id": None,
    "positive_results": [],
    "negative_results": None,
    "tags": [],
    "note": "",
    "sandbox": {},
    "allowed_args": None,
}

# The fields that decide what a package runs: by default only system admins set them.
RUN_FIELDS = ("kind", "command", "env", "allowed_args", "sandbox")
# What a package that runs nothing holds in them: a new package starts from here.
_RUNS_NOTHING: dict[str, Any] = {
    "kind": PackageKind.EXTERNAL.value,
    "command": [],
    "env": {},
    "allowed_args": None,
    "sandbox": {},
}


DEVICE_DEFAULTS: dict[str, Any] = {"description": "", "attributes": {}}
CONFIG_DEFAULTS: dict[str, Any] = {"description": "", "testvars": {}, "interfaces": []}


def _given(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a create or an edit, where an explicit null stands for the field's
    default (what leaving it out of a create gives); a field without one (the name) may not
    be null."""
    given = dict(values)
    for key, value in values.items():
        if value is None:
            if key not in defaults:
                raise ValidationFailed(f"{key} may not be null", field=key)
            given[key] = defaults[key]
    return given


def _package_row(package: Package) -> dict[str, Any]:
    return {
        "name": package.name,
        "description": package.description,
        "kind": package.kind.value,
        "command": list(package.command),
        "env": dict(package.env),
        "timeout_seconds": package.timeout_seconds,
        "max_attempts": package.max_attempts,
        "retry_delay_seconds": package.retry_delay_seconds,
        "rerun_lost": package.rerun_lost,
        "retry_backoff": package.retry_backoff,
        "retry_delay_max_seconds": package.retry_delay_max_seconds,
        "retry_jitter": package.retry_jitter,
        "keep_days": package.keep_days,
        "keep_last": package.keep_last,
        "output_days": package.output_days,
        "concurrency_limit": package.concurrency_limit,
        "config_id": package.config_id,
        "device_id": package.device_id,
        "positive_results": list(package.positive_results),
        "negative_results": None
        if package.negative_results is None
        else list(package.negative_results),
        "tags": list(package.tags),
        "note": package.note,
        "sandbox": dict(package.sandbox),
        "allowed_args": None if package.allowed_args is None else list(package.allowed_args),
    }


def _comparable(name: str, value: Any) -> Any:
    # No allowed_args and an empty list allow the same: nothing.
    return (value or None) if name == "allowed_args" else value


def _require_run_definer(
    rt: Runtime, actor: Principal, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """Who may make a package run something, or change what it runs."""
    changed = [
        name
        for name in RUN_FIELDS
        if _comparable(name, before[name]) != _comparable(name, after[name])
    ]
    require_run_definer(
        actor, changed, customer_admins_may=rt.settings.customer_admins_define_commands
    )


def _new_row(
    actor: Principal, defaults: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    now = utcnow()
    owner = {"tenant_id": actor.tenant_id, "user_id": actor.user_id, "created": now, "updated": now}
    return dict(defaults) | dict(values) | owner


# Packages: admins (packages:write) define them; system admins what they run -------------


def create_package(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Package:
    require(actor, Scope.PACKAGES_WRITE)
    row = _new_row(actor, PACKAGE_DEFAULTS, _given(values, PACKAGE_DEFAULTS))
    _require_run_definer(rt, actor, _RUNS_NOTHING, row)
    _check_package(row)
    with rt.db.transaction() as conn:
        _check_references(conn, row, actor.tenant_id)
        package_id = catalog.insert_row(conn, tables.packages, row)
        _retention_changed(conn, actor, row)
        return catalog.get_package(conn, package_id, tenant_id=actor.tenant_id)


def edit_package(
    rt: Runtime, *, actor: Principal, package_id: int, values: Mapping[str, Any]
) -> Package:
    require(actor, Scope.PACKAGES_WRITE)
    values = _given(values, PACKAGE_DEFAULTS)
    with rt.db.transaction() as conn:
        before = _package_row(catalog.get_package(conn, package_id, tenant_id=actor.tenant_id))
        after = before | dict(values)
        _require_run_definer(rt, actor, before, after)
        _check_package(after)
        _check_references(conn, values, actor.tenant_id)
        catalog.update_row(
            conn,
            tables.packages,
            package_id,
            dict(values) | {"updated": utcnow()},
            tenant_id=actor.tenant_id,
        )
        _retention_changed(conn, actor, values)
        return catalog.get_package(conn, package_id, tenant_id=actor.tenant_id)


def delete_package(rt: Runtime, *, actor: Principal, package_id: int) -> None:
    require(actor, Scope.PACKAGES_WRITE)
    with rt.db.transaction() as conn:
        catalog.get_package(conn, package_id, tenant_id=actor.tenant_id)
        if job_store.count_active_for_package(conn, package_id):
            raise Conflict("the package has pending or running jobs; cancel them first")
        catalog.delete_row(
            conn, tables.packages, package_id, PACKAGE_IN_USE, tenant_id=actor.tenant_id
        )


def get_package(rt: Runtime, *, actor: Principal, package_id: int) -> Package:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read_key() as conn:
        return catalog.get_package(conn, package_id, tenant_id=actor.tenant_id)


def list_packages(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Package], int]:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(
            conn, tables.packages, request, tenant_id=actor.tenant_id, pg=rt.pg
        )
        return [catalog.package_from_row(r) for r in rows], total


# Devices ----------------------------------------------------------------------------------


def create_device(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Device:
    require(actor, Scope.PACKAGES_WRITE)
    row = _new_row(actor, DEVICE_DEFAULTS, _given(values, DEVICE_DEFAULTS))
    with rt.db.transaction() as conn:
        device_id = catalog.insert_row(conn, tables.devices, row)
        return catalog.get_device(conn, device_id, tenant_id=actor.tenant_id)


def edit_device(
    rt: Runtime, *, actor: Principal, device_id: int, values: Mapping[str, Any]
) -> Device:
    require(actor, Scope.PACKAGES_WRITE)
    values = _given(values, DEVICE_DEFAULTS)
    with rt.db.transaction() as conn:
        catalog.update_row(
            conn,
            tables.devices,
            device_id,
            dict(values) | {"updated": utcnow()},
            tenant_id=actor.tenant_id,
        )
        return catalog.get_device(conn, device_id, tenant_id=actor.tenant_id)


def delete_device(rt: Runtime, *, actor: Principal, device_id: int) -> None:
    require(actor, Scope.PACKAGES_WRITE)
    with rt.db.transaction() as conn:
        catalog.delete_row(
            conn, tables.devices, device_id, DEVICE_IN_USE, tenant_id=actor.tenant_id
        )


def get_device(rt: Runtime, *, actor: Principal, device_id: int) -> Device:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read_key() as conn:
        return catalog.get_device(conn, device_id, tenant_id=actor.tenant_id)


def list_devices(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Device], int]:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(
            conn, tables.devices, request, tenant_id=actor.tenant_id, pg=rt.pg
        )
        return [catalog.device_from_row(r) for r in rows], total


# Configs ----------------------------------------------------------------------------------


def _check_config(values: Mapping[str, Any]) -> None:
    templates.template_variables([i["value"] for i in values.get("interfaces", [])])
    names = [i["value"] for i in values.get("interfaces", [])]
    if len(set(names)) != len(names):
        raise ValidationFailed("a config lists the same interface twice", field="interfaces")


def create_config(rt: Runtime, *, actor: Principal, values: Mapping[str, Any]) -> Config:
    require(actor, Scope.PACKAGES_WRITE)
    row = _new_row(actor, CONFIG_DEFAULTS, _given(values, CONFIG_DEFAULTS))
    _check_config(row)
    with rt.db.transaction() as conn:
        config_id = catalog.insert_row(conn, tables.configs, row)
        return catalog.get_config(conn, config_id, tenant_id=actor.tenant_id)


def edit_config(
    rt: Runtime, *, actor: Principal, config_id: int, values: Mapping[str, Any]
) -> Config:
    require(actor, Scope.PACKAGES_WRITE)
    values = _given(values, CONFIG_DEFAULTS)
    _check_config(values)
    with rt.db.transaction() as conn:
        catalog.update_row(
            conn,
            tables.configs,
            config_id,
            dict(values) | {"updated": utcnow()},
            tenant_id=actor.tenant_id,
        )
        return catalog.get_config(conn, config_id, tenant_id=actor.tenant_id)


def delete_config(rt: Runtime, *, actor: Principal, config_id: int) -> None:
    require(actor, Scope.PACKAGES_WRITE)
    with rt.db.transaction() as conn:
        catalog.delete_config(conn, config_id, CONFIG_IN_USE, tenant_id=actor.tenant_id)


def get_config(rt: Runtime, *, actor: Principal, config_id: int) -> Config:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read_key() as conn:
        return catalog.get_config(conn, config_id, tenant_id=actor.tenant_id)


def list_configs(rt: Runtime, *, actor: Principal, request: Listing) -> tuple[list[Config], int]:
    require(actor, Scope.PACKAGES_READ)
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(
            conn, tables.configs, request, tenant_id=actor.tenant_id, pg=rt.pg
        )
        return [catalog.config_from_row(r) for r in rows], total
