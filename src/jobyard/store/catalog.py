"""Devices, configs and packages: rows in, domain records out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobyard.domain import vocabulary
from jobyard.domain.listing import Listing
from jobyard.domain.models import Config, Device, Interface, Package
from jobyard.errors import Conflict, NotFound
from jobyard.store import listing, tables
from jobyard.store.key_reads import KeyReads, KeyRow
from jobyard.store.records import RecordReader

device_from_row = RecordReader(Device)


def interface_from_json(data: Mapping[str, Any]) -> Interface:
    return Interface(
        name=str(data.get("name") or ""),
        value=str(data.get("value") or ""),
        is_wireless=bool(data.get("is_wireless", False)),
        is_ics=bool(data.get("is_ics", False)),
    )


def interface_to_json(interface: Interface) -> dict[str, Any]:
    return {
        "name": interface.name,
        "value": interface.value,
        "is_wireless": interface.is_wireless,
        "is_ics": interface.is_ics,
    }


def config_from_row(row: Row[Any] | KeyRow) -> Config:
    return Config(
        id=row.id,
        name=row.name,
        description=row.description,
        testvars=dict(row.testvars),
        interfaces=tuple(interface_from_json(i) for i in row.interfaces),
        user_id=row.user_id,
        created=row.created,
        updated=row.updated,
    )


package_from_row = RecordReader(Package)

_BY_ID: dict[tuple[str, bool], Select[Any]] = {}


def _by_id(table: Table, *, of_tenant: bool) -> Select[Any]:
    """The lookup by id (and tenant), built once per table: every launch runs it."""
    key = (table.name, of_tenant)
    if key not in _BY_ID:
        query = select(table).where(table.c.id == bindparam("object_id"))
        if of_tenant:
            query = query.where(table.c.tenant_id == bindparam("tenant_id"))
        _BY_ID[key] = query
    return _BY_ID[key]


def _get_row(
    conn: Connection | KeyReads, table: Table, object_id: int, tenant_id: int | None
) -> Row[Any] | KeyRow:
    """One row by id; another tenant's row does not exist (None: any tenant, for workers)."""
    query = _by_id(table, of_tenant=tenant_id is not None)
    row = conn.execute(query, {"object_id": object_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(vocabulary.NOT_FOUND_MESSAGES[table.name])
    return row


def get_device(conn: Connection | KeyReads, device_id: int, *, tenant_id: int | None) -> Device:
    return device_from_row(_get_row(conn, tables.devices, device_id, tenant_id))


def get_config(conn: Connection | KeyReads, config_id: int, *, tenant_id: int | None) -> Config:
    return config_from_row(_get_row(conn, tables.configs, config_id, tenant_id))


def get_package(conn: Connection | KeyReads, package_id: int, *, tenant_id: int | None) -> Package:
    return package_from_row(_get_row(conn, tables.packages, package_id, tenant_id))


def _duplicate(table: Table, values: Mapping[str, Any]) -> Conflict:
    singular = table.name.rstrip("s")
    return Conflict(f"a {singular} named {values.get('name')!r} already exists")


def insert_row(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """Insert one row and return its id; a taken unique name is a Conflict."""
    try:
        with conn.begin_nested():
            result = conn.execute(insert(table).values(**values).returning(table.c.id))
            return int(result.scalar_one())
    except IntegrityError as exc:
        if _is_unique_name_violation(exc):
            raise _duplicate(table, values) from None
        raise


def update_row(
    conn: Connection, table: Table, object_id: int, values: Mapping[str, Any], *, tenant_id: int
) -> None:
    _get_row(conn, table, object_id, tenant_id)
    if not values:
        return
    try:
        with conn.begin_nested():
            conn.execute(update(table).where(table.c.id == object_id).values(**values))
    except IntegrityError as exc:
        if _is_unique_name_violation(exc):
            raise _duplicate(table, values) from None
        raise


def delete_row(
    conn: Connection, table: Table, object_id: int, in_use: str, *, tenant_id: int
) -> None:
    """Delete one row; a row that others still refer to is a Conflict saying so."""
    _get_row(conn, table, object_id, tenant_id)
    try:
        with conn.begin_nested():
            conn.execute(delete(table).where(table.c.id == object_id))
    except IntegrityError:
        raise Conflict(in_use) from None


def delete_config(conn: Connection, config_id: int, in_use: str, *, tenant_id: int) -> None:
    """Delete a config; the jobs that ran with it keep its name but no longer its id
    (`jobs.target_config_id` is no foreign key: migration 0007)."""
    delete_row(conn, tables.configs, config_id, in_use, tenant_id=tenant_id)
    conn.execute(
        update(tables.jobs)
        .where(tables.jobs.c.target_config_id == config_id)
        .values(target_config_id=None)
    )


def _is_unique_name_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text and "name" in text


def _catalog_columns(table: Table) -> dict[str, ColumnElement[Any]]:
    names = ("id", "name", "description", "user_id", "created", "updated")
    return {name: table.c[name] for name in names}


P = tables.packages
PACKAGE_FIELDS = listing.fields(
    vocabulary.PACKAGE_FIELDS,
    _catalog_columns(P)
    | {
        "kind": P.c.kind,
        "tags": P.c.tags,
        "config_id": func.coalesce(P.c.config_id, 0),
        "device_id": func.coalesce(P.c.device_id, 0),
        "timeout": func.coalesce(P.c.timeout_seconds, 0),
        "max_attempts": P.c.max_attempts,
        "note": P.c.note,
        # CDRouter's package test list: jobyard packages have none, so it is always empty.
        "testlist": literal("[]"),
        "use_as_testlist": literal(False),
    },
)
DEVICE_FIELDS = listing.fields(vocabulary.DEVICE_FIELDS, _catalog_columns(tables.devices))
CONFIG_FIELDS = listing.fields(vocabulary.CONFIG_FIELDS, _catalog_columns(tables.configs))
FIELDS_BY_TABLE = {"packages": PACKAGE_FIELDS, "devices": DEVICE_FIELDS, "configs": CONFIG_FIELDS}


def list_rows(
    conn: Connection, table: Table, request: Listing, *, tenant_id: int, pg: bool
) -> tuple[list[Row[Any]], int]:
    fields = FIELDS_BY_TABLE[table.name]
    query = select(table).where(table.c.tenant_id == tenant_id)
    query = listing.apply(query, request, fields, pg=pg, tiebreak=table.c.id)
    return listing.fetch_page(conn, query, request.page)


def select_ids(
    conn: Connection, table: Table, request: Listing, *, tenant_id: int, pg: bool
) -> list[int]:
    fields = FIELDS_BY_TABLE[table.name]
    query = select(table.c.id).where(table.c.tenant_id == tenant_id)
    query = listing.apply(query, request, fields, pg=pg, tiebreak=table.c.id)
    return [row.id for row in listing.run(conn, query)]
