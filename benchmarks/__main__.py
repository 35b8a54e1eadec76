"""`python -m benchmarks [--quick] [--peers]`: measure jobyard, print one table.

Every speed goal is a ratio against a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from benchmarks import api_requests, dashboard, deploy, lists, peers, retention, workloads
from benchmarks.measure import Figure, Report, ratio, repeat

console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    runs: int
    spawns: int
    jobs: int
    singles: int
    latency_seconds: float
    requests: int
    listed_jobs: int
    retained_jobs: int
    bulk: int
    flood_mib: int
    peer_jobs: int


# Jobs in flight for the throughput runs, in every deployment: `true` is over in a moment, so
# slots are what keeps the spawners busy while a turn at the database records other jobs.
# A turn claims as many jobs as slots are free, so more slots make bigger batches and less
# database work per job; only a few `true` processes ever run at the same moment. The bench
# used 32 before; that run is still shown, for comparison. These are jobyard's own figures:
# against the peers it is measured at equal slots, in `benchmarks.matrix` (--peers).
SLOTS = 128
EARLIER_SLOTS = 32

QUICK = Plan(
    runs=3,
    spawns=400,
    jobs=400,
    singles=200,
    latency_seconds=2,
    requests=600,
    listed_jobs=50_000,
    retained_jobs=50_000,
    bulk=2_000,
    flood_mib=200,
    peer_jobs=400,
)
FULL = Plan(
    runs=3,
    spawns=2_000,
    jobs=5_000,
    singles=1_000,
    latency_seconds=10,
    requests=3_000,
    listed_jobs=1_000_000,
    retained_jobs=1_000_000,
    bulk=10_000,
    flood_mib=1_024,
    peer_jobs=2_000,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes (under two minutes)")
    parser.add_argument(
        "--peers", action="store_true", help="also run the matrix against the peers"
    )
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run this section alone")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    report = Report()
    started = time.monotonic()
    if args.only:
        SECTIONS[args.only](plan, report)
        report.print()
        return
    spawn = section("spawn limit", lambda: spawn_limit(plan, report))
    embedded = throughput_sqlite(plan, report, spawn)
    isolation(plan, report)
    if deploy.postgres_available():
        throughput_postgres(plan, report, embedded)
    else:
        report.note("PostgreSQL", "not reachable: skipped", "")
    latency(plan, report)
    api_speed(plan, report)
    listing(plan, report)
    dashboard_pages(plan, report)
    retained(plan, report)
    bulk(plan, report)
    memory(plan, report)
    if args.peers:
        peer_matrix(plan, report)
    report.note("total time", f"{time.monotonic() - started:.0f} s")
    report.print()


def spawn_limit(plan: Plan, report: Report) -> Figure:
    """The faster of two ways to spawn is the baseline (the other is shown beside it)."""
    ways = {
        way: repeat(plan.runs, lambda way=way: workloads.spawn_limit(plan.spawns, way=way))
        for way in ("posix_spawn", "subprocess")
    }
    fastest = max(ways.values(), key=lambda figure: figure.median)
    for way, figure in ways.items():
        is_limit = figure is fastest
        report.add(
            f"spawn limit: `true` from 2 threads, {way}",
            figure,
            "spawns/s",
            ratio="baseline" if is_limit else ratio(figure.median, fastest.median),
        )
    return fastest


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL when one is reachable."""
    return ["sqlite", "postgres"] if deploy.postgres_available() else ["sqlite"]


def section(title: str, work):  # type: ignore[no-untyped-def]
    console.rule(title)
    return work()


def throughput_sqlite(plan: Plan, report: Report, spawn: Figure) -> Figure:
    console.rule("throughput, embedded SQLite")
    with _ready_for_throughput("sqlite", embedded_slots=SLOTS) as (dep, package):
        cpu_before = workloads.cpu_by_process(dep.pid)
        bulk_rate = repeat(
            plan.runs, lambda: workloads.throughput(dep, package, plan.jobs, bulk=True)
        )
        cpu_after = workloads.cpu_by_process(dep.pid)
        single = repeat(1, lambda: workloads.throughput(dep, package, plan.singles, bulk=False))
    earlier_slots = _bulk_throughput_sqlite(plan, EARLIER_SLOTS, plan.jobs)
    two_slots = _bulk_throughput_sqlite(plan, 2, plan.peer_jobs)
    report.add(
        f"SQLite embedded, {SLOTS} slots, {plan.jobs} jobs bulk (jobyard alone; peers: matrix)",
        bulk_rate,
        "jobs/s",
        "≥ 60 % of spawn limit",
        ratio(bulk_rate.median, spawn.median) + " of spawn limit",
    )
    jobs_run = plan.runs * plan.jobs
    report.note(
        f"SQLite embedded, {SLOTS} slots: CPU per job",
        ", ".join(
            f"{part} {(cpu_after[part] - cpu_before[part]) / jobs_run * 1000:.2f} ms"
            for part in cpu_after
        ),
    )
    report.add(f"SQLite embedded, {plan.singles} single launches", single, "jobs/s")
    report.add(
        f"SQLite embedded, {EARLIER_SLOTS} slots (the bench's earlier setting)",
        earlier_slots,
        "jobs/s",
        "",
        ratio(earlier_slots.median, spawn.median) + " of spawn limit",
    )
    report.add(
        f"SQLite embedded, 2 slots, {plan.peer_jobs} jobs",
        two_slots,
        "jobs/s",
        "",
        ratio(two_slots.median, spawn.median) + " of spawn limit",
    )
    return bulk_rate


def isolation(plan: Plan, report: Report) -> None:
    """What confining jobs costs per job (issue 16): the same bulk run of `true` jobs with
    jobs as the server's own user, as jobyard-job with one uid for all, as jobyard-job with
    a uid of its own each (the default as root: JOBYARD_JOB_UIDS, and the sweep of that uid
    after each job), and that inside bubblewrap; they take turns, `plan.runs` times, so that
    the machine's drift falls on each."""
    if os.geteuid() != 0:
        report.note("isolation's cost", "needs root (jobs as a user of their own): skipped")
        return
    ways = {
        "run as the server": {"JOBYARD_RUN_AS": "server"},
        "jobyard-job, one uid for all": {"JOBYARD_JOB_UIDS": "none"},
        "jobyard-job, a uid each": {},
    }
    if shutil.which("bwrap"):
        ways["jobyard-job, a uid each, in bwrap"] = {"JOBYARD_SANDBOX": "bwrap"}
    rates: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, dict[str, float]] = {way: {} for way in ways}
    for turn in range(plan.runs):
        for way, settings in ways.items():
            console.rule(f"isolation: {way}, turn {turn + 1}")
            options: dict[str, Any] = {"embedded_slots": SLOTS, **settings}
            with _ready_for_throughput("sqlite", **options) as (dep, package):
                before = workloads.cpu_by_process(dep.pid)
                rates[way].append(workloads.throughput(dep, package, plan.jobs, bulk=True))
                after = workloads.cpu_by_process(dep.pid)
            for part in after:
                cpu[way][part] = cpu[way].get(part, 0.0) + after[part] - before[part]
    baseline = Figure(tuple(rates["run as the server"]))
    jobs_run = plan.runs * plan.jobs
    for way in ways:
        figure = Figure(tuple(rates[way]))
        is_base = way == "run as the server"
        report.add(
            f"isolation: {plan.jobs} `true` jobs, 128 slots, {way}",
            figure,
            "jobs/s",
            "≥ 90 % of the server's user" if way == "jobyard-job, a uid each" else "",
            "baseline" if is_base else ratio(figure.median, baseline.median),
        )
        report.note(
            f"isolation, {way}: CPU per job",
            ", ".join(f"{p} {s / jobs_run * 1000:.3f} ms" for p, s in cpu[way].items()),
        )


@contextmanager
def _ready_for_throughput(kind: str, **options: Any) -> Iterator[tuple[deploy.Deployment, str]]:
    """A fresh deployment with a `true` package, warmed up (the first claims compile)."""
    with deploy.database(kind) as url, deploy.deployment(url, **options) as dep:
        package = dep.package(["true"])
        workloads.throughput(dep, package, 50, bulk=True)
        yield dep, package


def _bulk_throughput_sqlite(plan: Plan, slots: int, jobs: int) -> Figure:
    with _ready_for_throughput("sqlite", embedded_slots=slots) as (dep, package):
        return repeat(plan.runs, lambda: workloads.throughput(dep, package, jobs, bulk=True))


def throughput_postgres(plan: Plan, report: Report, embedded: Figure) -> None:
    for workers in (1, 4):
        console.rule(f"throughput, PostgreSQL, {workers} worker processes")
        options = {"embedded_slots": 0, "workers": workers, "slots": SLOTS // workers}
        with _ready_for_throughput("postgres", **options) as (dep, package):
            rate = repeat(
                plan.runs, lambda: workloads.throughput(dep, package, plan.jobs, bulk=True)
            )
        goal = "≥ 0.5x SQLite embedded" if workers == 4 else ""
        report.add(
            f"PostgreSQL, {workers} workers x {SLOTS // workers} slots",
            rate,
            "jobs/s",
            goal,
            ratio(rate.median, embedded.median) + " of SQLite",
        )


def latency(plan: Plan, report: Report) -> None:
    for kind in database_kinds():
        console.rule(f"latency at 100 launches/s, {kind}")
        embedded, workers = (2, 0) if kind == "sqlite" else (0, 4)
        with (
            deploy.database(kind) as url,
            deploy.deployment(url, embedded_slots=embedded, workers=workers) as dep,
        ):
            package = dep.package(["true"])
            workloads.steady_latency(dep, package, 100, 0.5)  # warm-up: first claims compile
            samples = [
                workloads.steady_latency(dep, package, 100, plan.latency_seconds)
                for _ in range(plan.runs)
            ]
        labels = {
            "claim": "launch→claimed",
            "spawn": "launch→process exists",
            "finish": "launch→finished",
        }
        # From the server's `created` stamp, at a steady rate (the goals of docs/performance.md
        # for it); idle launch→start is read from the matrix (`peer_matrix`), whose clock is
        # the client's, as the peers' is.
        for key, label in labels.items():
            for share in ("p50", "p99"):
                goal = {"spawn_p50": "≤ 5 ms", "spawn_p99": "≤ 50 ms"}.get(f"{key}_{share}", "")
                figure = Figure(tuple(s[f"{key}_{share}"] for s in samples))
                report.add(f"{kind}: {label} {share}", figure, "ms", goal)


def api_speed(plan: Plan, report: Report) -> None:
    """One client, one request at a time: jobyard's own cost per request shows against a
    bare FastAPI endpoint served the same way, round by round (`api_requests`)."""
    console.rule("API requests per second, sequential")
    api_requests.run(report, rounds=plan.runs, requests=plan.requests)


def listing(plan: Plan, report: Report) -> None:
    lists.run(report, plan.listed_jobs)


def dashboard_pages(plan: Plan, report: Report) -> None:
    dashboard.run(report, plan.listed_jobs)


def retained(plan: Plan, report: Report) -> None:
    retention.run(report, plan.retained_jobs)


def bulk(plan: Plan, report: Report) -> None:
    """One bulk launch of identical jobs, and of varied ones: packages, devices, tags and
    testvars in turn, as a script launching a test matrix sends them."""
    console.rule(f"one bulk launch of {plan.bulk:,}")
    with deploy.database("sqlite") as url, deploy.deployment(url, embedded_slots=0) as dep:
        packages = [dep.package(["true"], name=f"bulk-{n}") for n in range(10)]
        devices = [dep.device(f"bulk-device-{n}") for n in range(5)]
        later = "9999-01-01T00:00:00Z"
        bodies = {
            "identical": [{"package_id": packages[0], "run_at": later}] * plan.bulk,
            "varied": [_varied_item(n, packages, devices, later) for n in range(plan.bulk)],
        }
        figures = {}
        with dep.client() as api:
            for kind, items in bodies.items():
                content = json.dumps({"jobs": items}).encode()

                def once(content: bytes = content) -> float:
                    began = time.perf_counter()
                    api.post(
                        "/jobs/?bulk=launch",
                        content=content,
                        headers={"Content-Type": "application/json"},
                    ).raise_for_status()
                    return time.perf_counter() - began

                figures[kind] = repeat(plan.runs, once)
    report.add(f"SQLite: bulk launch of {plan.bulk:,} identical", figures["identical"], "s")
    report.add(
        f"SQLite: bulk launch of {plan.bulk:,} varied (10 packages, 5 devices, tags, testvars)",
        figures["varied"],
        "s",
        "≤ 0.5 s for 10,000",
    )


def _varied_item(n: int, packages: list[str], devices: list[str], run_at: str) -> dict[str, Any]:
    tags = [["nightly"], ["smoke", "fast"], []][n % 3]
    testvars = [{"name": "round", "value": str(n % 7)}]
    return {
        "package_id": packages[n % len(packages)],
        "device_id": devices[n % len(devices)],
        "run_at": run_at,
        "options": {"tags": tags, "testvars": testvars},
    }


def memory(plan: Plan, report: Report) -> None:
    console.rule("memory")
    with deploy.database("sqlite") as url, deploy.deployment(url, embedded_slots=2) as dep:
        idle = workloads.rss_kib(dep.pid)
        package = dep.package(["sh", "-c", f"head -c {plan.flood_mib}M /dev/zero"])
        with dep.client() as api:
            job = api.post("/jobs/", json={"package_id": package}).json()["data"]

            def finished() -> bool:
                return (
                    api.get(f"/jobs/{job['id']}/").json()["data"]["status"] != "running"
                    and api.get(f"/jobs/{job['id']}/").json()["data"]["status"] != "pending"
                )

            peak = workloads.peak_rss_while(dep.pid, finished)
    report.note("server RSS idle", f"{idle / 1024:.0f} MiB")
    report.note(
        f"server RSS peak while a job prints {plan.flood_mib} MiB", f"{peak / 1024:.0f} MiB", "flat"
    )


def peer_matrix(plan: Plan, report: Report) -> None:
    peers.run(report, quick=plan is QUICK)


# What `--only` runs alone.
SECTIONS = {
    "isolation": isolation,
    "api": api_speed,
    "latency": latency,
    "bulk": bulk,
    "lists": listing,
    "dashboard": dashboard_pages,
    "retention": retained,
    "peers": peer_matrix,
}


if __name__ == "__main__":
    main()
