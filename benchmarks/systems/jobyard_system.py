"""jobyard's driver, the same shape as a peer's: `jobyard serve` on SQLite with `slots`
embedded slots or beside a `jobyard worker` process, or on PostgreSQL with `jobyard worker`
processes (`benchmarks.deploy`); launches through the HTTP API as any client makes them, and
each job's end read from the `runs` table. Its jobs start through `posix_spawn`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from benchmarks import deploy
from benchmarks.systems.burst import Burst

WARM_UP_JOBS = 20
CONCURRENT_CLIENTS = 4
CONCURRENT_SINGLE = f"single x{CONCURRENT_CLIENTS}"
FLEET_WORKERS = 2  # `jobyard worker` processes on PostgreSQL: one per core of the bench machine
# Polling only has to notice the end (the figures come from the stamps in the database);
# slow enough not to take CPU from what it measures.
POLL_SECONDS = 0.2
IDLE_POLL_SECONDS = 0.01


class JobyardSession:
    """A running deployment with a `true` package; bursts and idle latency are asked of it.
    Its clients are made (and connected, by the warm-up) before any clock starts, as a peer's
    are: a new httpx client costs tens of milliseconds of its own."""

    def __init__(self, dep: deploy.Deployment, package_id: str) -> None:
        self.dep = dep
        self.package_id = package_id
        self.records = sa.create_engine(
            dep.database_url.replace("postgresql://", "postgresql+psycopg://")
        )
        self.clients = [dep.client() for _ in range(CONCURRENT_CLIENTS)]

    def burst(self, mode: str, jobs: int) -> Burst:
        """`single`: one client, one launch request at a time; `single x4`: four such clients
        at once; `bulk`: one bulk launch request of all the jobs."""
        began = time.time()
        if mode == "bulk":
            ids = self._launch_bulk(jobs)
        else:
            clients = CONCURRENT_CLIENTS if mode == CONCURRENT_SINGLE else 1
            ids = self._launch_singly(jobs, self.clients[:clients])
        return Burst.checked(began, jobs, self._wait_for_ends(ids, POLL_SECONDS))

    def idle_starts(self, jobs: int) -> list[float]:
        """Seconds from the client's clock before each launch to the run's `spawned` stamp
        (the job's process exists), one job at a time."""
        starts = []
        for _ in range(jobs):
            launched = time.time()
            job_id = self._launch_one(self.clients[0])
            (ended,) = self._wait_for_ends([job_id], IDLE_POLL_SECONDS)
            assert ended is not None
            starts.append(ended["spawned"] - launched)
        return starts

    def _launch_bulk(self, jobs: int) -> list[int]:
        body = {"jobs": [{"package_id": self.package_id}] * jobs}
        answer = self.clients[0].post("/jobs/?bulk=launch", json=body)
        answer.raise_for_status()
        return [int(job["id"]) for job in answer.json()["data"]]

    def _launch_singly(self, jobs: int, clients: list[httpx.Client]) -> list[int]:
        def launch_some(client: httpx.Client, count: int) -> list[int]:
            return [self._launch_one(client) for _ in range(count)]

        shares = [jobs // len(clients) + (n < jobs % len(clients)) for n in range(len(clients))]
        with ThreadPoolExecutor(len(clients)) as pool:
            launched = pool.map(launch_some, clients, shares)
            return [job_id for some in launched for job_id in some]

    def _launch_one(self, api: httpx.Client) -> int:
        answer = api.post("/jobs/", json={"package_id": self.package_id})
        answer.raise_for_status()
        return int(answer.json()["data"]["id"])

    def _wait_for_ends(self, ids: list[int], poll: float) -> list[dict[str, float] | None]:
        """Each job's last run (exit code, spawned, finished) once every one has finished."""
        deadline = time.monotonic() + 900
        query = sa.text(
            "SELECT job_id, exit_code, spawned, finished FROM runs"
            " WHERE job_id BETWEEN :low AND :high AND finished IS NOT NULL"
        )
        while True:
            with self.records.connect() as conn:
                rows = conn.execute(query, {"low": min(ids), "high": max(ids)}).all()
            ended = {row.job_id: row for row in rows}
            if len(ended) >= len(ids) or time.monotonic() > deadline:
                return [_recorded(ended[i]) if i in ended else None for i in ids]
            time.sleep(poll)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.records.dispose()


def _recorded(row: sa.Row[tuple[int, int, object, object]]) -> dict[str, float]:
    return {
        "exit_code": row.exit_code,
        "spawned": _epoch(row.spawned) if row.spawned else float("nan"),
        "end": _epoch(row.finished),
    }


def _epoch(stamp: object) -> float:
    """SQLite keeps naive UTC text; PostgreSQL gives aware datetimes."""
    value = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def launch_ceiling(jobs: int) -> float:
    """Launch requests per second of one client against a server running no jobs (each job
    waits for a far `run_at`), on SQLite: the most any of jobyard's one-by-one bursts can
    reach on this machine, whatever runs the jobs."""
    with deploy.database("sqlite") as url, deploy.deployment(url, embedded_slots=0) as dep:
        body = {"package_id": dep.package(["true"]), "run_at": "9999-01-01T00:00:00Z"}
        with dep.client() as api:
            api.post("/jobs/", json=body).raise_for_status()  # connected, and warm
            began = time.perf_counter()
            for _ in range(jobs):
                api.post("/jobs/", json=body).raise_for_status()
            return jobs / (time.perf_counter() - began)


@contextmanager
def session(slots: int, kind: str = "sqlite") -> Iterator[JobyardSession]:
    """`slots` slots on a fresh database, warmed up (the first claims compile their
    statements). `kind`: `sqlite`, embedded in `jobyard serve`; `sqlite-worker`, in one
    `jobyard worker` process beside an API-only server on the same file; `postgres`, in
    `jobyard worker` processes (one per core, up to `slots`) behind an API-only server."""
    workers = {"sqlite": 0, "sqlite-worker": 1, "postgres": min(slots, FLEET_WORKERS)}[kind]
    placement = (
        {"embedded_slots": 0, "workers": workers, "slots": slots // workers}
        if workers
        else {"embedded_slots": slots}
    )
    store = "postgres" if kind == "postgres" else "sqlite"
    with deploy.database(store) as url, deploy.deployment(url, **placement) as dep:
        running = JobyardSession(dep, dep.package(["true"]))
        try:
            running.burst(CONCURRENT_SINGLE, WARM_UP_JOBS)
            yield running
        finally:
            running.close()
