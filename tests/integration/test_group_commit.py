"""Single launches of several callers written together (a group commit): each is judged
alone, all that pass are stored in one transaction, and concurrent requests are answered
each with its own job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import sqlalchemy as sa

from jobyard.domain.models import Job
from jobyard.domain.permissions import Scope
from jobyard.errors import Forbidden, NotFound
from jobyard.services import accounts, authentication, catalog, jobs
from jobyard.services.runtime import Runtime
from jobyard.store import tables
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

FUTURE = "9999-01-01T00:00:00Z"


def test_launches_of_several_callers_are_judged_alone_and_stored_together(
    runtime: Runtime,
) -> None:
    accounts.bootstrap_admin(runtime)
    admin = authentication.check_token(runtime, ADMIN_TOKEN).principal
    reader = replace(admin, scopes=frozenset({Scope.JOBS_READ}))
    package = catalog.create_package(
        runtime, actor=admin, values={"name": "p", "command": ["true"]}
    )
    good = jobs.LaunchRequest(package_id=package.id, priority=3)
    launches = [
        (admin, good),
        (admin, jobs.LaunchRequest(package_id=999)),
        (reader, good),
        (admin, good),
    ]

    results = jobs.launch_each(runtime, launches)

    assert isinstance(results[1], NotFound)
    assert isinstance(results[2], Forbidden)
    first, last = results[0], results[3]
    assert isinstance(first, Job)
    assert isinstance(last, Job)
    assert first.id != last.id
    assert first.created == last.created  # one transaction's time
    with runtime.db.read() as conn:
        stored = conn.execute(sa.select(tables.jobs.c.id, tables.jobs.c.priority)).all()
        audited = conn.execute(
            sa.select(sa.func.count()).where(tables.audit_events.c.action == "job.launch")
        ).scalar_one()
    assert sorted(stored) == [(first.id, 3), (last.id, 3)]
    assert audited == 2


def test_concurrent_launches_each_get_their_own_answer(live_server: LiveServer) -> None:
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH) as api:
        package = api.post("/packages/", json={"name": "p", "command": ["true"]}).json()["data"]

    def launch_some(client_number: int) -> list[tuple[int, int, str]]:
        answers = []
        with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH) as api:
            for n in range(20):
                known = (client_number + n) % 4 != 0
                body = {
                    "package_id": package["id"] if known else "999999",
                    "run_at": FUTURE,
                    "context": {"client": client_number, "n": n},
                }
                answer = api.post("/jobs/", json=body)
                data = answer.json()["data"] if answer.status_code == 200 else {}
                answers.append((answer.status_code, n, str(data.get("context"))))
        return answers

    with ThreadPoolExecutor(6) as pool:
        by_client = list(pool.map(launch_some, range(6)))

    for client_number, answers in enumerate(by_client):
        for status, n, context in answers:
            if (client_number + n) % 4 == 0:
                assert status == 404
            else:
                assert status == 200
                assert context == str({"client": client_number, "n": n})
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH) as api:
        total = api.get("/jobs/", params={"limit": 1}).json()["links"]["total"]
    assert total == sum(status == 200 for answers in by_client for status, _, _ in answers)
