"""The jobs list over many jobs: every sort key, the filters users use alone and combined with
a status and a sort, page 1 and a deep page, on each database; p50 and p99 against the goal.
Then a scrape of `/metrics`, whose figures are read from the same database.

`python -m benchmarks --only lists` runs this section alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from rich.console import Console

from benchmarks import deploy
from benchmarks.measure import Report
from benchmarks.seed import Catalog, seed_jobs
from jobyard.domain.filters import FieldKind
from jobyard.domain.vocabulary import JOB_FIELDS

console = Console(stderr=True)

GOAL_MS = 20.0
LIMIT = 25
DEEP_PAGE = 1000  # or the last page, for a list that has fewer
SAMPLES = 15
SAMPLE_SECONDS = 2.0  # a slow row stops sampling after this long (but takes at least 3)
LEAST_SAMPLES = 3
COMBINED_STATUS = "status=completed"


@dataclass(frozen=True)
class Case:
    """One row of the matrix: what is asked of the list."""

    name: str
    filters: tuple[str, ...] = ()
    sort: str = ""


@dataclass(frozen=True)
class Timing:
    p50: float
    p99: float
    samples: int


def sort_keys() -> list[str]:
    """Every key the jobs list sorts by (the `options.` spellings name the same columns)."""
    return [
        name
        for name, kind in JOB_FIELDS.items()
        if kind is not FieldKind.ARRAY and not name.startswith("options.")
    ]


def user_filters(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """The filters users list by, each with realistic values from the seeded catalog."""
    package = catalog.packages[1][3]
    device = catalog.devices[1][3]
    return {
        "status=pending": ("status=pending",),
        "package_id": (f"package_id={package.id}",),
        "package_name": (f"package_name={package.name}",),
        "device_id": (f"device_id={device.id}",),
        "device_name": (f"device_name={device.name}",),
        "tags@>{nightly}": ("tags@>{nightly}",),
        "tags@>{nightly,lab}": ("tags@>{nightly,lab}",),
        "created in a month": ("created>=2026-03-01", "created<2026-04-01"),
        "finished in a week": ("finished>=2026-05-01", "finished<2026-05-08"),
    }


def cases(catalog: Catalog) -> Iterator[Case]:
    for key in sort_keys():
        yield Case(f"sort={key}", sort=key)
        yield Case(f"sort=-{key}", sort=f"-{key}")
    for name, filters in user_filters(catalog).items():
        yield Case(f"{name}, sort=-id", filters, sort="-id")
        yield Case(f"{name}, sort=-created", filters, sort="-created")
        if not name.startswith("status"):
            combined = (*filters, COMBINED_STATUS)
            yield Case(f"{name}, {COMBINED_STATUS}, sort=-created", combined, sort="-created")


def _params(case: Case, page: int) -> dict[str, object]:
    params: dict[str, object] = {"filter": list(case.filters), "limit": LIMIT, "page": page}
    if case.sort:
        params["sort"] = case.sort
    return params


class TooSlow(Exception):
    """The server gave up on the list (its query time limit)."""


def _get(api: httpx.Client, case: Case, page: int) -> tuple[float, dict[str, int]]:
    began = time.perf_counter()
    answer = api.get("/jobs/", params=_params(case, page))
    elapsed = (time.perf_counter() - began) * 1000
    if answer.status_code == httpx.codes.SERVICE_UNAVAILABLE:
        raise TooSlow
    answer.raise_for_status()
    links: dict[str, int] = answer.json()["links"]
    return elapsed, links


def time_page(api: httpx.Client, case: Case, page: int) -> Timing:
    """p50 and p99 of one page, after one request that warms it; a slow page takes fewer
    samples (p99 of few samples is their maximum)."""
    _get(api, case, page)
    samples: list[float] = []
    began = time.perf_counter()
    while len(samples) < SAMPLES and (
        len(samples) < LEAST_SAMPLES or time.perf_counter() - began < SAMPLE_SECONDS
    ):
        samples.append(_get(api, case, page)[0])
    return Timing(statistics.median(samples), _p99(samples), len(samples))


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def deep_page(api: httpx.Client, case: Case) -> int:
    last = _get(api, case, 1)[1]["last"]
    return max(1, min(DEEP_PAGE, last))


def _add(report: Report, kind: str, case: Case, page: int, timing: Timing) -> bool:
    met = timing.p50 <= GOAL_MS
    report.note(
        f"{kind}: {case.name}, page {page}",
        f"p50 {timing.p50:,.1f} ms, p99 {timing.p99:,.1f} ms ({timing.samples})",
        f"≤ {GOAL_MS:.0f} ms p50" + ("" if met else ": missed"),
        ratio=f"{timing.p50 / GOAL_MS:.2f} of goal",
    )
    return met


def _too_slow(report: Report, kind: str, case: Case, page: int) -> None:
    name = f"{kind}: {case.name}, page {page}"
    report.note(name, "over the server's query time limit (503)", f"≤ {GOAL_MS:.0f} ms p50: missed")


def measure_metrics(api: httpx.Client, report: Report, kind: str, jobs: int) -> None:
    """A Prometheus scrape of `/metrics` over the seeded jobs (its figures are read from the
    database at each scrape): p50 and p99 of SAMPLES."""
    url = api.base_url.copy_with(path="/metrics")
    api.get(url).raise_for_status()
    samples = []
    for _ in range(SAMPLES):
        began = time.perf_counter()
        api.get(url).raise_for_status()
        samples.append((time.perf_counter() - began) * 1000)
    report.note(
        f"{kind}: /metrics over {jobs:,} jobs",
        f"p50 {statistics.median(samples):,.1f} ms, p99 {_p99(samples):,.1f} ms ({SAMPLES})",
    )


def measure(api: httpx.Client, catalog: Catalog, report: Report, kind: str) -> None:
    met = rows = 0
    for case in cases(catalog):
        try:
            pages = dict.fromkeys((1, deep_page(api, case)))
        except TooSlow:
            pages = dict.fromkeys((1,))
        for page in pages:
            rows += 1
            try:
                met += _add(report, kind, case, page, time_page(api, case, page))
            except TooSlow:
                _too_slow(report, kind, case, page)
    report.note(f"{kind}: list rows within the goal", f"{met} of {rows}")


def run(report: Report, jobs: int) -> None:
    kinds = ["sqlite", "postgres"] if deploy.postgres_available() else ["sqlite"]
    for kind in kinds:
        console.rule(f"lists over {jobs:,} jobs, {kind}")
        with deploy.database(kind) as url:
            # A first start migrates and makes the admin the seed's jobs belong to; the seed
            # runs with no server, whose writers would wait out SQLite's seeding transaction.
            with deploy.deployment(url, embedded_slots=0):
                pass
            began = time.perf_counter()
            catalog = seed_jobs(url, jobs)
            report.note(f"{kind}: seed {jobs:,} jobs", f"{time.perf_counter() - began:.1f} s")
            with deploy.deployment(url, embedded_slots=0) as dep, dep.client() as api:
                measure(api, catalog, report, kind)
                measure_metrics(api, report, kind, jobs)
