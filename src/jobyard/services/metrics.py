"""What jobyard measures for Prometheus (`/metrics`).

Two kinds of figures, so that they stay right with any number of API processes and workers:
- read from the database at each scrape, the same whichever process answers (jobs by
  customer and status, live jobs by package, the queue, the fleet's slots): `FleetCollector`;
- counted by the process where the thing happens (requests it served, runs it started and
  ended, runs it reaped): the metrics below, in this process's own registry. Prometheus
  scrapes each process (`serve`'s `/metrics`, `jobyard worker --metrics-port`) and sums them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobyard.services.runtime import Runtime, utcnow
from jobyard.settings import Settings
from jobyard.store.fleet_figures import read_fleet_figures

# `_created` series double every counter's and histogram's lines for a figure that
# `process_start_time_seconds` already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LAUNCH_TO_START = Histogram(
    "jobyard_launch_to_start_seconds",
    "From when a job was due (launched, or its run_at) to when its process existed.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "jobyard_run_duration_seconds",
    "How long runs' processes ran, by the job status their end gave.",
    ["status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
    registry=REGISTRY,
)
RUNS_ENDED = Counter(
    "jobyard_runs_ended",
    "Runs this process ended, by package and the job status their end gave.",
    ["package_id", "status"],
    registry=REGISTRY,
)
RUNS_REAPED = Counter(
    "jobyard_runs_reaped",
    "Runs whose worker stopped renewing their lease (or that ran far past their timeout), "
    "ended by this process's reaper.",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "jobyard_http_requests",
    "HTTP requests this process answered, by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "jobyard_http_request_duration_seconds",
    "How long this process took to answer, by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)


class FleetCollector(Collector):
    """The database's figures, read when Prometheus scrapes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with self.rt.db.read() as conn:  # one snapshot, and no writer's turn on SQLite
            figures = read_fleet_figures(conn, now)
        jobs = GaugeMetricFamily(
            "jobyard_jobs", "Stored jobs by customer and status.", labels=["customer", "status"]
        )
        for customer, status, n in figures.jobs:
            jobs.add_metric([str(customer), status], n)
        yield jobs
        live = GaugeMetricFamily(
            "jobyard_jobs_live",
            "Pending and running jobs by customer, package and status.",
            labels=["customer", "package_id", "package", "status"],
        )
        for customer, package_id, package, status, n in figures.live_by_package:
            live.add_metric([str(customer), str(package_id), package, status], n)
        yield live
        yield GaugeMetricFamily(
            "jobyard_queue_depth", "Pending jobs that are due.", value=figures.queue_depth
        )
        oldest = figures.oldest_due
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "jobyard_queue_oldest_age_seconds",
            "How long the longest-waiting due job has waited (0: none waits).",
            value=age,
        )
        slots = GaugeMetricFamily(
            "jobyard_worker_slots", "The fleet's job slots, busy and in all.", labels=["state"]
        )
        slots.add_metric(["busy"], figures.slots_busy)
        slots.add_metric(["total"], figures.slots_total)
        yield slots


def token_admits(settings: Settings, bearer: str | None) -> bool:
    """Whether a scrape needs no account: the metrics are public, or it brings the metrics
    token (`JOBYARD_METRICS_TOKEN`). Anyone else must be a system admin: the figures name
    every customer's packages."""
    if settings.metrics_public:
        return True
    expected = settings.metrics_token
    return bool(expected and bearer and hmac.compare_digest(bearer.encode(), expected.encode()))


def exposition(rt: Runtime) -> bytes:
    """This process's metrics and the database's, in Prometheus's text format."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(rt))
    return generate_latest(REGISTRY) + generate_latest(registry)


def serve_process_metrics(host: str, port: int) -> None:
    """This process's own metrics on `http://host:port/metrics` (a `jobyard worker`, which has
    no API), from a thread of prometheus_client's."""
    start_http_server(port, addr=host, registry=REGISTRY)
