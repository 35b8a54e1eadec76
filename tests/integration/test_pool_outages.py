"""A worker engine whose database stumbles: a finished run's end and output are kept and
written once the database is back (PostgreSQL behind a proxy a test can break), and a
worker holding an old run of a job beside its new one ends each on its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.services import execution
from jobyard.services.runtime import Runtime, open_runtime
from jobyard.settings import Settings
from jobyard.store import tables
from jobyard.store.db import Database, normalise_url
from jobyard.worker.engine import Engine
from jobyard.worker.pending import MEMORY_BYTES
from tests.chaos.proxy import Proxy
from tests.conftest import AUTH

TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _with(settings: Settings, **changes: Any) -> Settings:
    return Settings(**{**settings.__dict__, **changes})


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The API alone, straight to the database: jobs here are run by the pool under test."""
    with TestClient(create_app(_with(settings, workers=0)), headers=AUTH) as client:
        yield client


def _package(api: TestClient, command: list[str], **fields: Any) -> str:
    body = {"name": f"p{time.monotonic_ns()}", "command": command} | fields
    response = api.post("/api/v1/packages/", json=body)
    assert response.status_code == 200, response.text
    package_id: str = response.json()["data"]["id"]
    return package_id


def _launch(api: TestClient, package_id: str, count: int = 1) -> list[str]:
    response = api.post(
        "/api/v1/jobs/?bulk=launch", json={"jobs": [{"package_id": package_id}] * count}
    )
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]]


def _job(api: TestClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}/").json()["data"]
    return job


def _log(api: TestClient, job_id: str) -> bytes:
    """The whole log, read piece by piece as a client does."""
    content, offset = b"", 0
    while True:
        response = api.get(
            f"/api/v1/jobs/{job_id}/log/?offset={offset}", headers={"Accept": "text/plain"}
        )
        assert response.status_code == 200, response.text
        if not response.content:
            return content
        content += response.content
        offset = int(response.headers["X-Next-Offset"])


def _runs(url: str, job_id: str) -> list[Any]:
    db = Database(url)
    with db.read() as conn:
        query = sa.select(tables.runs).where(tables.runs.c.job_id == int(job_id))
        rows = list(conn.execute(query.order_by(tables.runs.c.attempt)))
    db.dispose()
    return rows


PoolStarter = Callable[..., tuple[Engine, Proxy | None]]


@pytest.fixture
def pool_through(settings: Settings) -> Iterator[PoolStarter]:
    """Starts a worker pool whose database connections go through a breakable proxy (on
    PostgreSQL; straight to the file on SQLite)."""
    started: list[tuple[Engine, Runtime, Proxy | None]] = []

    def start(**changes: Any) -> tuple[Engine, Proxy | None]:
        url = settings.database_url
        proxy = None if url.startswith("sqlite") else Proxy.for_url(url)
        if proxy is not None:
            url = proxy.url(url)
        rt = open_runtime(_with(settings, database_url=url, **changes))
        rt.in_process_only = False  # launches come from another runtime: LISTEN for them
        pool = Engine(rt, slots=rt.settings.workers)
        pool.start()
        started.append((pool, rt, proxy))
        return pool, proxy

    yield start
    for pool, rt, proxy in started:
        pool.hand_back_all()
        pool.stop()
        rt.db.dispose()
        if proxy is not None:
            proxy.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_ends_and_output_outlive_an_outage_shorter_than_the_lease(
    api: TestClient,
    settings: Settings,
    pool_through: PoolStarter,
) -> None:
    """Three runs end together while the database is out of reach for longer than three
    failed turns; once it is back each is completed with all of its output, on the first
    attempt (no re-run), one of them with more output than memory holds."""
    _, proxy = pool_through(workers=4, lease_seconds=9.0)
    assert proxy is not None
    quick = _package(
        api,
        ["sh", "-c", 'echo "first $JOBYARD_JOB_ID"; sleep 1.5; echo "last $JOBYARD_JOB_ID"'],
        max_attempts=3,
    )
    big = MEMORY_BYTES * 2 + 7
    bulky = _package(
        api, ["sh", "-c", f"sleep 1.5; head -c {big} /dev/zero | tr '\\0' x"], max_attempts=3
    )
    job_ids = _launch(api, quick, 3) + _launch(api, bulky)
    _wait(lambda: all(_job(api, i)["status"] == "running" for i in job_ids), 20, "running")
    _wait(lambda: all(b"first" in _log(api, i) for i in job_ids[:3]), 10, "live output")

    proxy.outage(5.0)  # they end meanwhile; a turn fails about every second
    _wait(lambda: all(_job(api, i)["status"] in TERMINAL for i in job_ids), 30, "their ends")

    for job_id in job_ids[:3]:
        job = _job(api, job_id)
        assert (job["status"], job["attempts"]) == ("completed", 1), job
        assert _log(api, job_id) == f"first {job_id}\nlast {job_id}\n".encode()
    assert _job(api, job_ids[3])["status"] == "completed"
    assert _log(api, job_ids[3]) == b"x" * big
    assert not list((settings.data_dir / "spool").glob("*")), "spool files are removed"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_output_written_while_the_database_is_out_of_reach_is_kept(
    api: TestClient,
    pool_through: PoolStarter,
) -> None:
    """Output of a running job that the live-log flush cannot store is not dropped, and
    the job is not stopped for it."""
    _, proxy = pool_through(workers=1, lease_seconds=9.0)
    assert proxy is not None
    chatty = _package(
        api, ["sh", "-c", "sleep 1; for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done"]
    )
    (job_id,) = _launch(api, chatty)
    _wait(lambda: _job(api, job_id)["status"] == "running", 20, "running")
    with proxy.down():
        time.sleep(3.0)  # flushes fail while lines keep coming
    _wait(lambda: _job(api, job_id)["status"] in TERMINAL, 20, "its end")
    assert _job(api, job_id)["status"] == "completed"
    assert _log(api, job_id) == b"".join(f"line {i}\n".encode() for i in range(1, 7))


def test_an_old_run_of_a_job_ends_alone_beside_its_new_run(
    api: TestClient,
    settings: Settings,
    runtime: Runtime,
    pool_through: PoolStarter,
) -> None:
    """A worker that lost a run's lease (as one frozen past it would) is still stopping
    that run when it claims the job's retry: the old run's end must not take the new run
    with it (whose lease would then lapse, and the job cascade to `lost`)."""
    pool, _ = pool_through(workers=2, lease_seconds=2.0, cancel_grace_seconds=1.5)
    stubborn = _package(
        api,
        # The first run outlives a stop for a while, and ends well before the second.
        ["sh", "-c", 'trap "" TERM; test "$JOBYARD_ATTEMPT" = 1 && sleep 3 || sleep 8'],
        max_attempts=4,
    )
    (job_id,) = _launch(api, stubborn)
    _wait(lambda: _job(api, job_id)["status"] == "running", 20, "the first run")
    (first,) = _runs(settings.database_url, job_id)

    # Another worker's reaper takes the run for dead (its lease is made to lapse). The
    # reaper passes over a run whose row the pool holds just then (recording its pid, or
    # renewing its lease, which also undoes the lapse): lapse it again until it is taken.
    def lapsed_and_reaped() -> bool:
        with runtime.db.transaction() as conn:
            conn.execute(
                sa.update(tables.runs)
                .where(tables.runs.c.id == first.id)
                .values(lease_expires=first.started)
            )
        return execution.reap_expired(runtime) == 1

    _wait(lapsed_and_reaped, 5, "the reaper to take the first run")
    _wait(lambda: len(_runs(settings.database_url, job_id)) == 2, 10, "the retry's claim")
    second = _runs(settings.database_url, job_id)[1]
    assert second.worker_id == first.worker_id == pool.identity.id  # the same worker holds both

    _wait(lambda: _job(api, job_id)["status"] in TERMINAL, 30, "the job's end")
    job = _job(api, job_id)
    assert (job["status"], job["attempts"]) == ("completed", 2), job
    assert [r.status for r in _runs(settings.database_url, job_id)] == ["lost", "completed"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_job_claimed_too_late_in_its_lease_is_handed_back_not_started(
    api: TestClient, settings: Settings, pool_through: PoolStarter
) -> None:
    """A turn held up past half the lease after its leases began (here a lock on the row of
    the job whose end it stores first; a worker frozen mid-turn does the same) does not start
    what it claimed: by then another worker's reaper may run the job again. The job is
    handed back, claimed again with a lease of its own, and runs once."""
    lease = 3.0
    pool_through(workers=1, lease_seconds=lease)
    first = _launch(api, _package(api, ["sleep", "1"]))[0]
    _wait(lambda: _job(api, first)["status"] == "running", 30, "the first job to run")
    [second] = _launch(api, _package(api, ["true"]))  # waits for the one slot
    holder = sa.create_engine(normalise_url(settings.database_url))
    waiting_on_a_lock = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    watcher = holder.execution_options(isolation_level="AUTOCOMMIT")  # fresh figures each time
    with holder.begin() as conn:
        conn.execute(
            sa.select(tables.jobs.c.id).where(tables.jobs.c.id == int(first)).with_for_update()
        )
        # The first job's end (after its second) is the turn's first write: it waits here,
        # its turn's leases begun; the turn then claims the second job, its lease mostly gone.

        def turn_waits() -> bool:
            with watcher.connect() as watching:
                return int(watching.execute(waiting_on_a_lock).scalar_one()) > 0

        _wait(turn_waits, 30, "the pool's turn to wait for the lock")
        time.sleep(lease * 0.6)
    holder.dispose()
    _wait(lambda: _job(api, second)["status"] == "completed", 30, "the second job")
    assert _job(api, first)["status"] == "completed"
    runs = _runs(settings.database_url, second)
    assert [(run.status, run.spawned is None) for run in runs] == [
        ("lost", True),  # handed back: its process never existed
        ("completed", False),
    ]
    events = api.get(f"/api/v1/jobs/{second}/events/").json()["data"]
    assert any(event["reason"] == execution.LATE_TO_START for event in events), events
