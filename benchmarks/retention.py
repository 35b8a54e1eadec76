"""Retention's background deletion against launches: a database seeded with old finished jobs
gets a retention that lets them all go, and while the server's sweep deletes them, one client
launches at a steady rate. Launch latency during the deletion against the same launches
before it, how fast the jobs go, and what the database's size does: it must stop growing.

`python -m benchmarks --only retention [--quick]` runs this section alone.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import psycopg
from rich.console import Console

from benchmarks import deploy
from benchmarks.comparison import percentile
from benchmarks.measure import Figure, Report
from benchmarks.seed import CUSTOMERS, seed_jobs

console = Console(stderr=True)

LAUNCHES_PER_SECOND = 50
BASELINE_SECONDS = 10.0
GOAL_P99_MS = 50.0
FINISHED_SHARE = 0.93  # of the seeded jobs (benchmarks/seed.py): the rest are pending or running
AFTER_LAUNCHES = 5_000  # launched once the deletion is over: the space freed is reused
FAST_LAUNCHES = 500  # a second, for those
MAX_SECONDS = 1800


@dataclass(frozen=True)
class Outcome:
    baseline_ms: list[float]
    during_ms: list[float]
    deleted: int
    seconds: float
    size_seeded: int
    size_swept: int
    size_vacuumed: int | None
    size_after: int
    jobs_heap: tuple[int | None, int | None]  # before and after the last launches


def run(report: Report, old_jobs: int) -> None:
    seeded = round(old_jobs / FINISHED_SHARE)
    kinds = ["sqlite", "postgres"] if deploy.postgres_available() else ["sqlite"]
    for kind in kinds:
        console.rule(f"retention: deleting {old_jobs:,} old jobs under launches, {kind}")
        outcome = _measure(kind, seeded)
        _report(report, kind, outcome)


def _measure(kind: str, seeded: int) -> Outcome:
    settings = {
        "JOBYARD_RETENTION_INTERVAL_SECONDS": "1",
        # The bench launches `true` and keeps what it launches: only the seeded jobs are old.
    }
    with (
        deploy.database(kind) as url,
        deploy.deployment(url, embedded_slots=0, **settings) as dep,
    ):
        package = dep.package(["true"])
        console.print(f"seeding {seeded:,} jobs")
        seed_jobs(url, seeded)
        size = _size_reader(url)
        size_seeded = size()
        with dep.client() as api:
            baseline = _launch_for(api, package, BASELINE_SECONDS)
            for tenant in range(1, CUSTOMERS + 1):
                api.put(
                    "/retention/", json={"keep_days": 1}, headers={"Customer-Id": str(tenant)}
                ).raise_for_status()
            started = time.monotonic()
            during: list[float] = []
            # Launch while the sweep runs: it is over once each customer's deletion is in
            # its audit trail (the launched jobs are young, and stay).
            while len(swept := _swept(api)) < CUSTOMERS:
                if time.monotonic() - started > MAX_SECONDS:
                    raise TimeoutError(f"retention did not finish in {MAX_SECONDS} s: {swept}")
                during += _launch_for(api, package, 2.0)
            seconds = time.monotonic() - started
            size_swept = size()
            vacuumed = _vacuum(url)
            heap_before = jobs_heap(url)
            _launch_for(api, package, AFTER_LAUNCHES / FAST_LAUNCHES, rate=FAST_LAUNCHES)
            size_after = size()
            heaps = (heap_before, jobs_heap(url))
    deleted = sum(swept.values())
    return Outcome(
        baseline, during, deleted, seconds, size_seeded, size_swept, vacuumed, size_after, heaps
    )


def _vacuum(url: str) -> int | None:
    """PostgreSQL: what autovacuum does after a large deletion, done now on the bench's own
    database (the test server runs with autovacuum off): the dead rows' space becomes
    reusable, and the tables stop growing. Its size after; None for SQLite, whose sweep gave
    the pages back already."""
    if url.startswith("sqlite"):
        return None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM")
    return _size_reader(url)()


def _swept(api: httpx.Client) -> dict[int, int]:
    """The jobs retention deleted, by customer, from their audit trails."""
    found = {}
    for tenant in range(1, CUSTOMERS + 1):
        events = api.get(
            "/events/",
            params={"filter": "action=retention.delete", "limit": "none"},
            headers={"Customer-Id": str(tenant)},
        ).json()["data"]
        if events:
            found[tenant] = sum(event["detail"]["jobs"] for event in events)
    return found


def _launch_for(
    api: httpx.Client, package: str, seconds: float, rate: int = LAUNCHES_PER_SECOND
) -> list[float]:
    """Launch at a steady rate for `seconds`; each launch's round trip in ms."""
    body = {"package_id": package}
    taken = []
    interval = 1.0 / rate
    next_at = time.perf_counter()
    end = next_at + seconds
    while next_at < end:
        began = time.perf_counter()
        api.post("/jobs/", json=body).raise_for_status()
        taken.append((time.perf_counter() - began) * 1000)
        next_at += interval
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return taken


def _size_reader(url: str) -> Callable[[], int]:
    """The database's size in bytes: the SQLite file (with its WAL), or PostgreSQL's
    tables with their indexes and TOAST."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")

        def sqlite_size() -> int:
            with sqlite3.connect(path, timeout=60) as conn:
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                page = conn.execute("PRAGMA page_size").fetchone()[0]
            return int(pages * page)

        return sqlite_size

    def postgres_size() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            ).fetchone()
            return int(row[0])  # type: ignore[index]

    return postgres_size


def jobs_heap(url: str) -> int | None:
    """PostgreSQL: the `jobs` table's own rows (no indexes): where deleted jobs' space is
    reused by new ones once VACUUM has passed. None for SQLite."""
    if url.startswith("sqlite"):
        return None
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_relation_size('jobs')").fetchone()
        return int(row[0])  # type: ignore[index]


def _report(report: Report, kind: str, outcome: Outcome) -> None:
    def p(values: list[float], share: float) -> float:
        return percentile(values, share) if values else float("nan")

    report.add(
        f"{kind}: launch p99 while retention deletes {outcome.deleted:,} old jobs",
        Figure((p(outcome.during_ms, 0.99),)),
        "ms",
        f"≤ {GOAL_P99_MS:g} ms",
        f"p50 {statistics.median(outcome.during_ms or [0]):.1f} ms; before the deletion "
        f"p50 {statistics.median(outcome.baseline_ms):.1f}, p99 {p(outcome.baseline_ms, 0.99):.1f}",
    )
    report.add(
        f"{kind}: retention's deletion rate under {LAUNCHES_PER_SECOND} launches/s",
        Figure((outcome.deleted / outcome.seconds,)),
        "jobs/s",
        "",
        f"{outcome.deleted:,} in {outcome.seconds:.0f} s",
    )
    mib = 1024 * 1024
    sizes = [outcome.size_seeded, outcome.size_swept, outcome.size_vacuumed, outcome.size_after]
    steps = "seeded / swept / " + ("VACUUM / " if outcome.size_vacuumed is not None else "")
    report.note(
        f"{kind}: database size {steps}after {AFTER_LAUNCHES:,} more launches",
        " / ".join(f"{size / mib:.1f}" for size in sizes if size is not None) + " MiB",
        "stops growing",
    )
    before, after = outcome.jobs_heap
    if before is not None and after is not None:
        report.note(
            f"{kind}: the jobs table's rows before / after {AFTER_LAUNCHES:,} more launches",
            f"{before / mib:.1f} / {after / mib:.1f} MiB",
            "reused",
        )
