"""Fill a database with many jobs quickly, straight into the tables (not through the API).

The jobs are a realistic mix, not one shape: several customers (the first, whose admin the
bench lists as, has most of them), many packages and devices, varied tags, every status, and
times spread over months, as a server that has run for a while holds them.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

CUSTOMERS = 5  # tenant 1 (the system tenant, which exists already) and four more
PACKAGES = {1: 50} | {tenant: 10 for tenant in range(2, CUSTOMERS + 1)}
DEVICES = {1: 20} | {tenant: 5 for tenant in range(2, CUSTOMERS + 1)}
FIRST_CUSTOMER_SHARE = 0.8
# Weighted like a busy server's history: most jobs have ended, a few wait or run.
STATUSES = (("completed", 70), ("failed", 14), ("cancelled", 9), ("pending", 5), ("running", 2))
# One job in ten is tagged nightly, as in the measurements; others carry other tags.
TAGS = (
    (["nightly"], 6),
    (["nightly", "lab"], 4),
    (["smoke"], 20),
    (["smoke", "lab"], 5),
    (["release"], 5),
    (["regression", "lab"], 10),
    ([], 50),
)
SPAN = timedelta(days=180)
JOB_COLUMNS = (
    "tenant_id",
    "status",
    "package_id",
    "package_name",
    "kind",
    "device_id",
    "device_name",
    "target_device_id",
    "options",
    "tags",
    "context",
    "argv",
    "env",
    "interfaces",
    "interface_names",
    "priority",
    "run_at",
    "user_id",
    "created",
    "updated",
    "started",
    "finished",
    "exit_code",
    "attempts",
    "current_run_id",
)
CHUNK = 50_000
OPTIONS = json.dumps(
    {
        "tags": None,
        "skip_tests": None,
        "begin_at": "",
        "end_at": "",
        "testvars": None,
        "extra_cli_args": "",
    }
)
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Named:
    """A package or device: its id, its name and its customer."""

    id: int
    name: str
    tenant_id: int


@dataclass(frozen=True)
class Catalog:
    """Each customer's packages and devices."""

    packages: dict[int, list[Named]]
    devices: dict[int, list[Named]]


def package_name(tenant_id: int, index: int) -> str:
    return f"t{tenant_id}-package-{index}"


def device_name(tenant_id: int, index: int) -> str:
    return f"t{tenant_id}-device-{index}"


def _weighted(choices: Sequence[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    return [value for value, _ in choices], [weight for _, weight in choices]


class _Writer:
    """Plain statements on either database, with its own parameter style and time format."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        self.conn: Any = (
            sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
            if self.sqlite
            else psycopg.connect(url)
        )

    def stamp(self, at: datetime | None) -> object:
        if at is None or not self.sqlite:
            return at
        return at.strftime("%Y-%m-%d %H:%M:%S.%f")

    def insert(self, table: str, columns: Sequence[str], row: Sequence[object]) -> int:
        marks = ", ".join(("?" if self.sqlite else "%s") for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) RETURNING id"
        return int(self.conn.execute(sql, tuple(row)).fetchone()[0])


def _catalog(writer: _Writer) -> Catalog:
    at = writer.stamp(START)
    packages: dict[int, list[Named]] = {}
    devices: dict[int, list[Named]] = {}
    for tenant in range(1, CUSTOMERS + 1):
        if tenant > 1:
            writer.insert("tenants", ("id", "name", "created"), (tenant, f"customer-{tenant}", at))
        packages[tenant] = [
            Named(
                _package(writer, tenant, package_name(tenant, i), at),
                package_name(tenant, i),
                tenant,
            )
            for i in range(PACKAGES[tenant])
        ]
        devices[tenant] = [
            Named(
                _device(writer, tenant, device_name(tenant, i), at), device_name(tenant, i), tenant
            )
            for i in range(DEVICES[tenant])
        ]
    return Catalog(packages, devices)


def _package(writer: _Writer, tenant: int, name: str, at: object) -> int:
    columns = ("tenant_id", "name", "kind", "command", "env", "positive_results", "tags")
    values = (tenant, name, "command", '["true"]', "{}", "[]", "[]")
    return writer.insert(
        "packages", (*columns, "user_id", "created", "updated"), (*values, 1, at, at)
    )


def _device(writer: _Writer, tenant: int, name: str, at: object) -> int:
    columns = ("tenant_id", "name", "attributes", "user_id", "created", "updated")
    return writer.insert("devices", columns, (tenant, name, "{}", 1, at, at))


def _rows(count: int, catalog: Catalog, writer: _Writer) -> Iterator[tuple[object, ...]]:
    rng = random.Random(20)
    statuses, status_weights = _weighted(STATUSES)
    tags, tag_weights = _weighted(TAGS)
    tags_text = [json.dumps(t) for t in tags]
    step = SPAN / count
    for i in range(count):
        tenant = 1 if rng.random() < FIRST_CUSTOMER_SHARE else rng.randint(2, CUSTOMERS)
        package = rng.choice(catalog.packages[tenant])
        device = rng.choice(catalog.devices[tenant]) if rng.random() < 0.8 else None
        status = rng.choices(statuses, status_weights)[0]
        created = START + step * i
        started = None if status == "pending" else created + timedelta(seconds=rng.randint(0, 60))
        ended = status in {"completed", "failed", "cancelled"} and started is not None
        finished = started + timedelta(seconds=rng.randint(1, 3600)) if ended else None
        yield (
            tenant,
            status,
            package.id,
            package.name,
            "command",
            None,
            device.name if device else "",
            device.id if device else None,
            OPTIONS,
            rng.choices(tags_text, tag_weights)[0],
            "{}",
            '["true"]',
            "{}",
            "[]",
            "[]",
            10 if rng.random() < 0.05 else 0,
            writer.stamp(created),
            1,
            writer.stamp(created),
            writer.stamp(finished or started or created),
            writer.stamp(started),
            writer.stamp(finished),
            (0 if status == "completed" else 1) if finished else None,
            0 if started is None else 1,
            # A started job's run (the seed writes no runs: the id is what lists sort by).
            None if started is None else i + 1,
        )


def seed_jobs(database_url: str, count: int) -> Catalog:
    """`count` jobs over five customers with their packages and devices; returns those."""
    writer = _Writer(database_url)
    catalog = _catalog(writer)
    writer.conn.commit()
    rows = _rows(count, catalog, writer)
    if writer.sqlite:
        _copy_sqlite(writer.conn, rows)
    else:
        _copy_postgres(writer.conn, rows)
    writer.conn.close()
    _analyze(database_url)
    return catalog


def _copy_sqlite(conn: sqlite3.Connection, rows: Iterator[tuple[object, ...]]) -> None:
    marks = ", ".join("?" * len(JOB_COLUMNS))
    sql = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({marks})"
    # The list indexes take keys in no particular order: a cache that holds them keeps the
    # seed from rereading their pages.
    conn.execute("PRAGMA cache_size = -1048576")
    with conn:
        while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
            conn.executemany(sql, chunk)


def _copy_postgres(conn: psycopg.Connection[Any], rows: Iterator[tuple[object, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY jobs ({', '.join(JOB_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.commit()


def _analyze(database_url: str) -> None:
    # SQLite gathers the planner's statistics only when told (ANALYZE), which a jobyard
    # server never does: the lists are measured as its plans without them are.
    if database_url.startswith("sqlite"):
        return
    # A table that grew over months has been vacuumed by autovacuum; a freshly copied one has
    # no visibility map yet, and every index-only scan would visit the heap as well.
    # The seed's pages are then written out before any list is timed, not by a checkpoint
    # that runs while they are (CHECKPOINT needs a superuser or pg_checkpoint).
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        with suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")
