"""Request overhead: one client sending one request at a time (what a script or a CI step
does), against a bare FastAPI endpoint served the same way (`bare_app`).

Every server is up for the whole section and they take turns: each round measures every row
once, in an order rotated from one round to the next, and a row's ratio is read within its
round, against the bare endpoint's rate of that same round. This machine's speed drifts by a
third from one minute to the next; a ratio of two medians taken minutes apart read that
drift as jobyard's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from benchmarks import bare_app, deploy, workloads
from benchmarks.comparison import Ratios, rotated
from benchmarks.measure import Figure, Report

Request = Callable[[httpx.Client], httpx.Response]
WARM_UP_REQUESTS = 100  # each row's first, unmeasured: routes and statements compile
BARE_GET, BARE_POST = "bare FastAPI GET", "bare FastAPI POST"
STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class Row:
    label: str
    url: str
    request: Request
    baseline: str = ""  # the bare row it is read against ("": a baseline itself)
    goal: str = ""


def run(report: Report, *, rounds: int, requests: int) -> None:
    stores = ["sqlite", "postgres"] if deploy.postgres_available() else ["sqlite"]
    with ExitStack() as servers:
        bare = servers.enter_context(bare_app.served())
        rows = [
            Row(BARE_GET, bare, lambda c: c.get("/bare/")),
            Row(BARE_POST, bare, lambda c: c.post("/bare/", json={"package_id": "1"})),
        ]
        for store in stores:
            url = servers.enter_context(deploy.database(store))
            dep = servers.enter_context(deploy.deployment(url, embedded_slots=0))
            rows += _jobyard_rows(dep, STORE_NAMES[store])
        for row in rows:
            _rate(row, WARM_UP_REQUESTS)
        rates: dict[str, list[float]] = {row.label: [] for row in rows}
        for turn in range(rounds):
            for row in rotated(rows, turn):
                rates[row.label].append(_rate(row, requests))
    for row in rows:
        figure = Figure(tuple(rates[row.label]))
        if not row.baseline:
            report.add(row.label, figure, "r/s", ratio="baseline")
            continue
        ratios = Ratios.by_round(rates[row.label], [rates[row.baseline]])
        against = row.baseline.removeprefix("bare FastAPI ")
        report.add(row.label, figure, "r/s", row.goal, f"{ratios.text()} of bare {against}")


def _jobyard_rows(dep: deploy.Deployment, name: str) -> list[Row]:
    """A launch and two GETs of one object."""
    package = dep.package(["true"])
    body = {"package_id": package, "run_at": "9999-01-01T00:00:00Z"}
    with dep.client() as api:
        job_id = api.post("/jobs/", json=body).json()["data"]["id"]
    return [
        Row(
            f"launch (POST /api/v1/jobs/), {name}",
            dep.url,
            lambda c: c.post("/api/v1/jobs/", json=body),
            BARE_POST,
            "≥ 50 % of bare",
        ),
        Row(
            f"GET /api/v1/jobs/<id>/, {name}",
            dep.url,
            lambda c: c.get(f"/api/v1/jobs/{job_id}/"),
            BARE_GET,
            "≥ 60 % of bare",
        ),
        Row(
            f"GET /api/v1/packages/<id>/, {name}",
            dep.url,
            lambda c: c.get(f"/api/v1/packages/{package}/"),
            BARE_GET,
            "≥ 60 % of bare",
        ),
    ]


def _rate(row: Row, requests: int) -> float:
    def send(client: httpx.Client) -> None:
        row.request(client).raise_for_status()

    return workloads.requests_per_second(row.url, send, requests, threads=1)
