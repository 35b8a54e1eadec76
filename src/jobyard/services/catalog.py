"""Use cases for what jobs are made from: packages (what runs), devices and configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from jobyard.domain import templates
from jobyard.domain.models import Config, Device, Package, PackageKind
from jobyard.errors import Conflict, ValidationFailed
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import catalog, listing, tables
from jobyard.store import jobs as job_store

DEVICE_IN_USE = "the device is used by a package; change the package first"
CONFIG_IN_USE = "the config is used by a package; change the package first"


def _check_references(conn: Connection, values: Mapping[str, Any]) -> None:
    if values.get("config_id") is not None:
        catalog.get_config(conn, values["config_id"])
    if values.get("device_id") is not None:
        catalog.get_device(conn, values["device_id"])


def _check_package(values: Mapping[str, Any]) -> None:
    """Rules a package must keep whatever edits it goes through."""
    if values["kind"] == PackageKind.COMMAND.value and not values["command"]:
        raise ValidationFailed("a command package needs a non-empty command", field="command")
    templates.template_variables(values["command"])  # syntax only: names resolve at launch
    templates.template_variables(list(values["env"].values()))
    for name in values["env"]:
        if not name or "=" in name or "\x00" in name:
            raise ValidationFailed(f"invalid environment variable name {name!r}", field="env")
    positive, negative = values["positive_results"], values["negative_results"] or []
    if len(set(positive)) != len(positive) or len(set(negative)) != len(negative):
        raise ValidationFailed("result options must not repeat")
    if set(positive) & set(negative):
        raise ValidationFailed("a result cannot be both positive and negative")


PACKAGE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "kind": PackageKind.COMMAND.value,
    "command": [],
    "env": {},
    "timeout_seconds": None,
    "max_attempts": 1,
    "retry_delay_seconds": 0.0,
    "concurrency_limit": None,
    "config_id": None,
    "device_id": None,
    "positive_results": [],
    "negative_results": None,
    "tags": [],
    "note": "",
}


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
        "concurrency_limit": package.concurrency_limit,
        "config_id": package.config_id,
        "device_id": package.device_id,
        "positive_results": list(package.positive_results),
        "negative_results": None
        if package.negative_results is None
        else list(package.negative_results),
        "tags": list(package.tags),
        "note": package.note,
    }


def create_package(rt: Runtime, *, values: Mapping[str, Any], user_id: int) -> Package:
    row = PACKAGE_DEFAULTS | dict(values)
    _check_package(row)
    now = utcnow()
    with rt.db.transaction() as conn:
        _check_references(conn, row)
        row |= {"user_id": user_id, "created": now, "updated": now}
        package_id = catalog.insert_row(conn, tables.packages, row)
        return catalog.get_package(conn, package_id)


def edit_package(rt: Runtime, *, package_id: int, values: Mapping[str, Any]) -> Package:
    with rt.db.transaction() as conn:
        current = catalog.get_package(conn, package_id)
        row = _package_row(current) | dict(values)
        _check_package(row)
        _check_references(conn, values)
        catalog.update_row(conn, tables.packages, package_id, dict(values) | {"updated": utcnow()})
        return catalog.get_package(conn, package_id)


def delete_package(rt: Runtime, *, package_id: int) -> None:
    with rt.db.transaction() as conn:
        catalog.get_package(conn, package_id)
        if job_store.count_active_for_package(conn, package_id):
            raise Conflict("the package has pending or running jobs; cancel them first")
        catalog.delete_row(conn, tables.packages, package_id, "the package is in use")


def get_package(rt: Runtime, *, package_id: int) -> Package:
    with rt.db.read() as conn:
        return catalog.get_package(conn, package_id)


def list_packages(rt: Runtime, *, request: listing.Listing) -> tuple[list[Package], int]:
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(conn, tables.packages, request, pg=rt.pg)
        return [catalog.package_from_row(r) for r in rows], total


def create_device(rt: Runtime, *, values: Mapping[str, Any], user_id: int) -> Device:
    now = utcnow()
    row = {"description": "", "attributes": {}} | dict(values)
    with rt.db.transaction() as conn:
        row |= {"user_id": user_id, "created": now, "updated": now}
        return catalog.get_device(conn, catalog.insert_row(conn, tables.devices, row))


def edit_device(rt: Runtime, *, device_id: int, values: Mapping[str, Any]) -> Device:
    with rt.db.transaction() as conn:
        catalog.update_row(conn, tables.devices, device_id, dict(values) | {"updated": utcnow()})
        return catalog.get_device(conn, device_id)


def delete_device(rt: Runtime, *, device_id: int) -> None:
    with rt.db.transaction() as conn:
        catalog.delete_row(conn, tables.devices, device_id, DEVICE_IN_USE)


def get_device(rt: Runtime, *, device_id: int) -> Device:
    with rt.db.read() as conn:
        return catalog.get_device(conn, device_id)


def list_devices(rt: Runtime, *, request: listing.Listing) -> tuple[list[Device], int]:
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(conn, tables.devices, request, pg=rt.pg)
        return [catalog.device_from_row(r) for r in rows], total


def _check_config(values: Mapping[str, Any]) -> None:
    templates.template_variables([i["value"] for i in values.get("interfaces", [])])
    names = [i["value"] for i in values.get("interfaces", [])]
    if len(set(names)) != len(names):
        raise ValidationFailed("a config lists the same interface twice", field="interfaces")


def create_config(rt: Runtime, *, values: Mapping[str, Any], user_id: int) -> Config:
    now = utcnow()
    row = {"description": "", "testvars": {}, "interfaces": []} | dict(values)
    _check_config(row)
    with rt.db.transaction() as conn:
        row |= {"user_id": user_id, "created": now, "updated": now}
        return catalog.get_config(conn, catalog.insert_row(conn, tables.configs, row))


def edit_config(rt: Runtime, *, config_id: int, values: Mapping[str, Any]) -> Config:
    _check_config(values)
    with rt.db.transaction() as conn:
        catalog.update_row(conn, tables.configs, config_id, dict(values) | {"updated": utcnow()})
        return catalog.get_config(conn, config_id)


def delete_config(rt: Runtime, *, config_id: int) -> None:
    with rt.db.transaction() as conn:
        catalog.delete_row(conn, tables.configs, config_id, CONFIG_IN_USE)


def get_config(rt: Runtime, *, config_id: int) -> Config:
    with rt.db.read() as conn:
        return catalog.get_config(conn, config_id)


def list_configs(rt: Runtime, *, request: listing.Listing) -> tuple[list[Config], int]:
    with rt.db.read() as conn:
        rows, total = catalog.list_rows(conn, tables.configs, request, pg=rt.pg)
        return [catalog.config_from_row(r) for r in rows], total
