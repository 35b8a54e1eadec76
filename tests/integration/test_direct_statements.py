"""A Core statement run on the driver (`store/direct.py`) gives what `Connection.execute`
gives: parameters converted by their types (times, id lists), rows converted back (JSON,
times, numbers), the rows an UPDATE changed; inside the same transaction, on both
databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobyard.services import accounts
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from jobyard.store.direct import DirectStatement, direct
from jobyard.store.types import UTCDateTime, in_ids
from tests.integration.job_rows import job_row

J = tables.jobs
AT = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)


def _jobs(runtime: Runtime, count: int) -> list[int]:
    user_id = accounts.bootstrap_admin(runtime).admin_user_id
    row = job_row(tenant_id=1, user_id=user_id, status="pending", at=AT)
    rows = [
        row | {"argv": ["echo", f"n{n}"], "env": {"N": str(n)}, "timeout_seconds": n + 0.5}
        for n in range(count)
    ]
    with runtime.db.transaction() as conn:
        inserted = conn.execute(sa.insert(J).returning(J.c.id), rows)
        return sorted(inserted.scalars())


def test_a_query_reads_as_execute_does(runtime: Runtime) -> None:
    ids = _jobs(runtime, 3)
    query = sa.select(J.c.id, J.c.argv, J.c.env, J.c.run_at, J.c.status, J.c.timeout_seconds).where(
        in_ids(J.c.id, "ids"), J.c.run_at <= sa.bindparam("now", type_=UTCDateTime())
    )
    given = {"ids": ids[:2], "now": AT}
    with runtime.db.transaction() as conn:
        expected = sorted(tuple(row) for row in conn.execute(query, given))
        found = DirectStatement(query.order_by(J.c.id)).rows(direct(conn), given)
    assert [tuple(row) for row in found] == expected
    assert found[1].argv == ["echo", "n1"]
    assert found[1].env == {"N": "1"}
    assert found[0].run_at == AT
    assert found[1].timeout_seconds == 1.5  # PostgreSQL's processors for numbers need its type


def test_an_update_counts_its_rows_inside_the_transaction(runtime: Runtime) -> None:
    ids = _jobs(runtime, 4)
    later = AT + timedelta(days=1)
    statement = DirectStatement(
        sa.update(J)
        .where(in_ids(J.c.id, "ids"), J.c.status == sa.bindparam("old"))
        .values(updated=sa.bindparam("at"), exit_code=sa.bindparam("code"))
    )
    with runtime.db.transaction() as conn:
        changed = statement.execute(
            direct(conn), {"ids": ids[1:], "old": "pending", "at": later, "code": 3}
        )
        assert changed.rowcount == 3
        seen = conn.execute(sa.select(J.c.id, J.c.updated, J.c.exit_code).order_by(J.c.id)).all()
    assert [tuple(row) for row in seen] == [(ids[0], AT, None)] + [(i, later, 3) for i in ids[1:]]


def test_a_failed_transaction_takes_its_driver_statements_with_it(runtime: Runtime) -> None:
    ids = _jobs(runtime, 2)
    statement = DirectStatement(
        sa.update(J).where(in_ids(J.c.id, "ids")).values(exit_code=sa.bindparam("code"))
    )

    def fails_after_the_statement() -> None:
        with runtime.db.transaction() as conn:
            statement.execute(direct(conn), {"ids": ids, "code": 9})
            raise RuntimeError("after the statement")

    with pytest.raises(RuntimeError):
        fails_after_the_statement()
    with runtime.db.read() as conn:
        assert conn.execute(sa.select(J.c.exit_code)).scalars().all() == [None, None]
