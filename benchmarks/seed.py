"""Fill a database with many jobs quickly, straight into the table (not through the API)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg

STATUSES = ("completed", "completed", "completed", "failed", "cancelled", "pending")
TAGS = (["nightly"], ["smoke"], ["nightly", "lab"], [])
COLUMNS = (
    "tenant_id",
    "status",
    "package_name",
    "kind",
    "options",
    "tags",
    "context",
    "argv",
    "env",
    "interfaces",
    "interface_names",
    "run_at",
    "user_id",
    "created",
    "updated",
)
CHUNK = 50_000


def _rows(count: int, *, sqlite: bool) -> Iterator[tuple[object, ...]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    options = json.dumps(
        {
            "tags": None,
            "skip_tests": None,
            "begin_at": "",
            "end_at": "",
            "testvars": None,
            "extra_cli_args": "",
        }
    )
    for i in range(count):
        at = start + timedelta(seconds=i)
        stamp: object = at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at
        tags = json.dumps(TAGS[i % len(TAGS)])
        yield (
            1,
            STATUSES[i % len(STATUSES)],
            f"package-{i % 50}",
            "command",
            options,
            tags,
            "{}",
            '["true"]',
            "{}",
            "[]",
            "[]",
            stamp,
            1,
            stamp,
            stamp,
        )


def seed_jobs(database_url: str, count: int) -> None:
    if database_url.startswith("sqlite"):
        _seed_sqlite(database_url.removeprefix("sqlite:///"), count)
    else:
        _seed_postgres(database_url, count)


def _seed_sqlite(path: str, count: int) -> None:
    conn = sqlite3.connect(path, timeout=60)
    marks = ", ".join("?" * len(COLUMNS))
    sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({marks})"
    rows = _rows(count, sqlite=True)
    with conn:
        while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
            conn.executemany(sql, chunk)
    conn.execute("ANALYZE")
    conn.close()


def _seed_postgres(url: str, count: int) -> None:
    columns = ", ".join(COLUMNS)
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY jobs ({columns}) FROM STDIN") as copy,
    ):
        for row in _rows(count, sqlite=False):
            copy.write_row(row)
    # A table that grew over months has been vacuumed by autovacuum; a freshly copied one has
    # no visibility map yet, and every index-only scan would visit the heap as well.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) jobs")
