"""Statements run at the driver level (`store.driver`) and single-parameter id lists
(`types.in_ids`) store and find exactly what SQLAlchemy's own statements would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jobyard import jsontext
from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import driver, tables
from jobyard.store.types import in_ids
from tests.integration.job_rows import job_row

J, E, T = tables.jobs, tables.job_events, tables.tokens
AT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
EVENTS = driver.RowsInsert(E, ("job_id", "from_status", "to_status", "at", "user_id", "reason"))


def _job(runtime: Runtime) -> tuple[int, int]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    with runtime.db.transaction() as conn:
        return int(conn.execute(sa.insert(J).values(row).returning(J.c.id)).scalar_one()), user_id


def test_rows_beyond_one_statement_are_all_inserted_and_returned(runtime: Runtime) -> None:
    job_id, _ = _job(runtime)
    count = driver.MAX_VALUES // len(EVENTS.columns) * 2 + 7  # SQLite: three statements
    rows = [
        (job_id, None, "pending", AT + timedelta(seconds=i), None, f"r{i}") for i in range(count)
    ]
    returning = driver.RowsInsert(E, EVENTS.columns, returning=("id", "reason"))
    with runtime.db.transaction() as conn:
        returned = returning.execute(conn, rows)
    assert sorted(reason for _, reason in returned) == sorted(f"r{i}" for i in range(count))
    with runtime.db.read() as conn:
        stored = conn.execute(sa.select(E.c.reason, E.c.at).where(E.c.job_id == job_id)).all()
    assert sorted(stored) == sorted((f"r{i}", AT + timedelta(seconds=i)) for i in range(count))


@pytest.mark.parametrize("count", [3, driver.ARRAYS_FROM_ROWS + 5])
def test_an_ordered_insert_gives_ascending_ids_in_the_rows_order(
    runtime: Runtime, count: int
) -> None:
    job_id, _ = _job(runtime)
    reasons = [f"r{(i * 7919) % count}" for i in range(count)]  # not in sorted order
    rows = [(job_id, None, "pending", AT, None, reason) for reason in reasons]
    returning = driver.RowsInsert(E, EVENTS.columns, returning=("id", "reason"))
    with runtime.db.transaction() as conn:
        returned = returning.execute(conn, rows, ordered=True)
    assert [reason for _, reason in sorted(returned)] == reasons


@pytest.mark.parametrize("count", [2, driver.ARRAYS_FROM_ROWS])
def test_json_and_nulls_go_in_whether_few_or_many_rows(runtime: Runtime, count: int) -> None:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    names = [f"t{count}-{i}" for i in range(count)]
    scopes: list[list[str]] = [["jobs:read", "é"] if i % 2 else [] for i in range(count)]
    tokens = driver.RowsInsert(
        T, ("user_id", "name", "secret_hash", "scopes", "created", "expires")
    )
    with runtime.db.transaction() as conn:
        rows = [(user_id, n, f"{n:x<64}", s, AT, None) for n, s in zip(names, scopes, strict=True)]
        tokens.execute(conn, rows)
    with runtime.db.read() as conn:
        stored = conn.execute(
            sa.select(T.c.name, T.c.scopes, T.c.expires).where(T.c.name.in_(names))
        ).all()
    assert sorted(stored) == sorted(zip(names, scopes, [None] * count, strict=True))


@pytest.mark.parametrize("count", [4, driver.ARRAYS_FROM_ROWS + 4])
def test_rows_sharing_a_value_and_rows_with_an_equal_one_each_keep_their_own(
    runtime: Runtime, count: int
) -> None:
    """Converting a value once for the rows that share it must not give an equal value's
    rows its text: [1], [1.0] and [True] are equal in Python, not in JSON."""
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    shared: list[object] = [1]
    given = [shared, shared, [1.0], [True]] * (count // 4)
    names = [f"s{count}-{i}" for i in range(count)]
    tokens = driver.RowsInsert(T, ("user_id", "name", "secret_hash", "scopes", "created"))
    with runtime.db.transaction() as conn:
        rows = [(user_id, n, f"{n:x<64}", v, AT) for n, v in zip(names, given, strict=True)]
        tokens.execute(conn, rows)
    with runtime.db.read() as conn:
        stored = dict(
            conn.execute(sa.select(T.c.name, T.c.scopes).where(T.c.name.in_(names))).all()
        )
    assert [jsontext.dumps(stored[n]) for n in names] == [jsontext.dumps(v) for v in given]


def test_times_and_json_read_back_as_sqlalchemy_writes_them(runtime: Runtime) -> None:
    job_id, user_id = _job(runtime)
    elsewhere = AT.astimezone(timezone(timedelta(hours=-7)))  # the same instant
    with runtime.db.transaction() as conn:
        EVENTS.execute(conn, [(job_id, "pending", "running", elsewhere, user_id, "driver")])
        conn.execute(
            sa.insert(E).values(
                job_id=job_id, from_status="pending", to_status="running", at=AT, reason="core"
            )
        )
        tokens = driver.RowsInsert(T, ("user_id", "name", "secret_hash", "scopes", "created"))
        tokens.execute(conn, [(user_id, "t", "h" * 64, ["jobs:read", "é"], AT)])
    with runtime.db.read() as conn:
        times = dict(conn.execute(sa.select(E.c.reason, E.c.at).where(E.c.job_id == job_id)).all())
        scopes = conn.execute(sa.select(T.c.scopes).where(T.c.name == "t")).scalar_one()
        # As text on SQLite the two compare equal too, not only as read back.
        same = conn.execute(
            sa.select(sa.func.count()).where(E.c.job_id == job_id, E.c.at == AT)
        ).scalar_one()
    assert times == {"driver": AT, "core": AT}
    assert scopes == ["jobs:read", "é"]
    assert same == 2


def test_in_ids_matches_exactly_the_ids_given(runtime: Runtime) -> None:
    job_id, user_id = _job(runtime)
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    with runtime.db.transaction() as conn:
        ids = [job_id] + [
            int(i) for i in conn.execute(sa.insert(J).returning(J.c.id), [row] * 1500).scalars()
        ]
    query = sa.select(J.c.id).where(in_ids(J.c.id, "ids"))
    with runtime.db.read() as conn:
        for chosen in ([], [ids[0]], ids[::3], ids, [*ids[:5], 10**12]):
            found = conn.execute(query, {"ids": chosen}).scalars().all()
            assert sorted(found) == sorted(i for i in chosen if i in ids)
    with runtime.db.transaction() as conn:
        deleted = conn.execute(sa.delete(J).where(in_ids(J.c.id, "ids")), {"ids": ids[1:4]})
    assert deleted.rowcount == 3


def test_in_ids_finds_rows_through_the_index(runtime: Runtime) -> None:
    """Written as a comparison (no `= 1` after it on SQLite), so the primary key is used:
    a scan of the whole table per call once made every worker turn slower as jobs piled up."""
    query = sa.select(J.c.id).where(in_ids(J.c.id, "ids"), J.c.status == "running")
    with runtime.db.read() as conn:
        sql = str(query.compile(conn))
        if runtime.pg:
            assert "= ANY" in sql
            return
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("[1, 2]", "running")).all()
    steps = [row[-1] for row in plan]
    assert any(step.startswith("SEARCH jobs") and "rowid=?" in step for step in steps), steps
    assert not any(step.startswith("SCAN jobs") for step in steps), steps
