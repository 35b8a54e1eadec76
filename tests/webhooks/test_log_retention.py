"""Retention's sweep deletes webhook deliveries done more than 30 days ago, with their tries,
and keeps newer ones and any still pending."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from jobyard.services import accounts, retention
from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import tables


def test_old_finished_deliveries_go_with_the_sweep(runtime: Runtime) -> None:
    admin = accounts.bootstrap_admin(runtime).admin_user_id
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    with runtime.db.transaction() as conn:
        hook = {"tenant_id": 1, "url": "https://example.com/", "events": ["job.finished"]}
        hook |= {"secret": "v1:unread", "secret_hint": "…unre", "user_id": admin}
        hook |= {"created": now, "updated": now}
        webhook_id = conn.execute(
            sa.insert(tables.webhooks).values(**hook).returning(tables.webhooks.c.id)
        ).scalar_one()
        kept = {}
        for name, status, created in (
            ("old delivered", "delivered", old),
            ("old failed", "failed", old),
            ("old pending", "pending", old),
            ("recent delivered", "delivered", recent),
        ):
            row = {"webhook_id": webhook_id, "event": "job.finished", "payload": {}}
            row |= {"status": status, "created": created, "updated": created}
            kept[name] = conn.execute(
                sa.insert(tables.webhook_deliveries)
                .values(**row)
                .returning(tables.webhook_deliveries.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(tables.webhook_attempts).values(
                    delivery_id=kept[name], at=created, status_code=500, duration_ms=1
                )
            )

    retention.sweep(runtime, now=now)

    with runtime.db.read() as conn:
        left = set(conn.execute(sa.select(tables.webhook_deliveries.c.id)).scalars())
        tried = set(conn.execute(sa.select(tables.webhook_attempts.c.delivery_id)).scalars())
    assert left == {kept["old pending"], kept["recent delivered"]}
    assert tried == left  # the tries of a deleted delivery go with it
