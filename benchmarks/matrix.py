"""Like with like (issue 20, item 4): jobyard and each peer at the same slot counts, one-by-one
launches against one-by-one enqueues and bulk against each peer's own batch enqueue, the same
jobs, rounds in a rotated order, the same steal rule for all; the ratios are read from it."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from benchmarks import bare_app, workloads
from benchmarks.comparison import Cell, Ratios, best_cell, median, percentile, rotated
from benchmarks.measure import Figure, Report, ratio
from benchmarks.steal import StealMeter
from benchmarks.systems import jobyard_system, peer
from benchmarks.systems.burst import Burst

SLOT_COUNTS = (2, 16, 64)
MODES = ("single", "bulk")
# A burst during which the hypervisor took more than this share of the CPU is measured again
# (for every system alike), at most STEAL_RETRIES times; the last try is kept either way.
MAX_STEAL_PERCENT = 5.0
STEAL_RETRIES = 2
JOBYARD = "jobyard"
# How fast this machine spawns `true` from two threads, each way: the ceiling of the systems
# whose jobs spawn that way (measured each round, as the machine drifts).
SPAWN_WAYS = ("posix_spawn", "subprocess")
# Issue 20: one-by-one launches at least as fast as the best peer's one-by-one enqueues; bulk
# twice its batch enqueue.
GOALS = {"single": "≥ 1.0x", "bulk": "≥ 2x"}
IDLE_GOAL_MS = (2, 5)  # an idle launch→spawned, p50 and p99


@dataclass(frozen=True)
class Sizes:
    jobs: int  # per burst, the same for every system
    rounds: int
    idle_jobs: int  # per round, at the smallest slot count


FULL = Sizes(jobs=2_000, rounds=3, idle_jobs=100)
QUICK = Sizes(jobs=100, rounds=2, idle_jobs=10)


class Running(Protocol):
    def burst(self, mode: str, jobs: int) -> Burst: ...
    def idle_starts(self, jobs: int) -> list[float]: ...


@dataclass(frozen=True)
class Configuration:
    """One system in one configuration of its workers, and how its jobs spawn."""

    system: str
    variant: str
    modes: tuple[str, ...]
    spawns_with: str  # the way its jobs start: `posix_spawn` or `subprocess`
    start: Callable[[int], AbstractContextManager[Running]]

    @property
    def name(self) -> str:
        return f"{self.system} {self.variant}"


def configurations(python: Path, stores: dict[str, str]) -> list[Configuration]:
    """jobyard (SQLite with embedded slots, also with four concurrent one-by-one clients, the
    comparison's own; SQLite with the slots in a `jobyard worker` process beside the API,
    and a PostgreSQL fleet, candidates for its best) and every peer configuration in
    `peer.PEERS`."""
    found = [
        Configuration(
            JOBYARD,
            "SQLite embedded",
            (MODES[0], jobyard_system.CONCURRENT_SINGLE, MODES[1]),
            "posix_spawn",
            jobyard_system.session,
        ),
        Configuration(
            JOBYARD,
            "SQLite worker process",
            (MODES[0], jobyard_system.CONCURRENT_SINGLE, MODES[1]),
            "posix_spawn",
            lambda slots: jobyard_system.session(slots, "sqlite-worker"),
        ),
        Configuration(
            JOBYARD,
            "PostgreSQL workers",
            MODES,
            "posix_spawn",
            lambda slots: jobyard_system.session(slots, "postgres"),
        ),
    ]
    for system, (_, variants) in peer.PEERS.items():
        for variant in variants:

            def start(slots: int, system: str = system, variant: str = variant) -> Any:
                return peer.session(python, stores, system, variant, slots)

            found.append(Configuration(system, variant, MODES, "subprocess", start))
    return found


@dataclass
class Measured:
    """Every cell's jobs/s by round, the largest steal kept in each, idle starts, failures."""

    rounds: int
    samples: dict[Cell, list[float]] = field(default_factory=dict)
    steal: dict[Cell, float] = field(default_factory=lambda: defaultdict(float))
    idle: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)

    def record(self, cell: Cell, round_index: int, jobs_per_second: float) -> None:
        self.samples.setdefault(cell, [math.nan] * self.rounds)[round_index] = jobs_per_second

    def against_best_peer(
        self, every: list[Configuration], slots: int, mode: str, ours: str = ""
    ) -> Ratios:
        """A jobyard configuration (its own, the first, unless named) over the round's best
        peer, round by round."""
        ours = ours or every[0].name
        theirs = [self.samples[(c.name, slots, mode)] for c in every if c.system != JOBYARD]
        return Ratios.by_round(self.samples[(ours, slots, mode)], theirs)


def run(report: Report, python: Path, stores: dict[str, str], sizes: Sizes) -> None:
    """The whole matrix, then its rows in `report` and its table on the console."""
    measured = Measured(sizes.rounds)
    every = configurations(python, stores)
    limits: dict[str, list[float]] = {way: [] for way in SPAWN_WAYS}
    ceilings: list[float] = []
    ways_in: list[float] = []
    for round_index in range(sizes.rounds):
        for way in rotated(SPAWN_WAYS, round_index):
            limits[way].append(workloads.spawn_limit(sizes.jobs, way=way))
        ceilings.append(jobyard_system.launch_ceiling(sizes.jobs))
        with bare_app.served() as bare:
            ways_in += workloads.idle_ways_in(bare, sizes.idle_jobs)
        for slots in SLOT_COUNTS:
            for configuration in rotated(every, round_index):
                Console(stderr=True).rule(
                    f"round {round_index + 1}: {configuration.name}, {slots} slots"
                )
                _measure(configuration, slots, round_index, sizes, measured)
        # The rounds so far, in case a long run has to be cut short.
        print_matrix(every, measured, Console(stderr=True, width=180))
    figures = {way: Figure(tuple(samples)) for way, samples in limits.items()}
    _report(report, every, measured, figures, sizes)
    _report_ceilings(report, every, measured, figures, Figure(tuple(ceilings)))
    _report_idle_ceiling(report, ways_in)
    print_matrix(every, measured, Console(width=180))


def _measure(
    configuration: Configuration, slots: int, round_index: int, sizes: Sizes, measured: Measured
) -> None:
    """One session of `configuration` with `slots` slots: a burst in each of its modes, and
    idle latency at the smallest slot count. A failure is noted and leaves its cells empty."""
    try:
        with configuration.start(slots) as running:
            for mode in configuration.modes:
                cell = (configuration.name, slots, mode)
                rate, stolen = _steady(lambda: running.burst(mode, sizes.jobs))
                measured.record(cell, round_index, rate)
                measured.steal[cell] = max(measured.steal[cell], stolen)
            if slots == SLOT_COUNTS[0]:
                measured.idle[configuration.name] += running.idle_starts(sizes.idle_jobs)
    except Exception as failure:  # a peer that fails must not take the others' figures along
        measured.failures.append(f"{configuration.name}, {slots} slots: {failure}")
        for mode in configuration.modes:
            measured.samples.setdefault(
                (configuration.name, slots, mode), [math.nan] * sizes.rounds
            )


def _steady(burst: Callable[[], Burst]) -> tuple[float, float]:
    """jobs/s of a burst and the steal it saw, measured again while the steal is too high."""
    for _ in range(1 + STEAL_RETRIES):
        meter = StealMeter()
        rate = burst().jobs_per_second
        stolen = meter.stop()
        if stolen <= MAX_STEAL_PERCENT:
            break
    return rate, stolen


def _report(
    report: Report,
    every: list[Configuration],
    measured: Measured,
    limits: dict[str, Figure],
    sizes: Sizes,
) -> None:
    for ours in (c for c in every if c.system == JOBYARD):
        _report_configuration(report, every, measured, ours)
    _report_bests(report, every, measured, limits)
    _report_idle(report, every, measured)
    for failure in measured.failures:
        report.note("matrix: failed", failure)
    report.note("matrix: size", f"{sizes.jobs} jobs per burst, {sizes.rounds} rounds, rotated")


def _report_configuration(
    report: Report, every: list[Configuration], measured: Measured, ours: Configuration
) -> None:
    """A jobyard configuration against the best peer at each slot count, and its four
    concurrent clients against one."""
    for slots in SLOT_COUNTS:
        for mode in MODES:
            ratios = measured.against_best_peer(every, slots, mode, ours.name)
            report.note(
                f"matrix: {ours.name} / best peer, {slots} slots, {mode}",
                ratios.text(),
                GOALS[mode],
            )
        if jobyard_system.CONCURRENT_SINGLE not in ours.modes:
            continue
        concurrent = Ratios.by_round(
            measured.samples[(ours.name, slots, jobyard_system.CONCURRENT_SINGLE)],
            [measured.samples[(ours.name, slots, MODES[0])]],
        )
        report.note(
            f"matrix: {ours.name}, 4 clients / 1 client, {slots} slots", concurrent.text(), "≥ 2x"
        )


def _report_bests(
    report: Report, every: list[Configuration], measured: Measured, limits: dict[str, Figure]
) -> None:
    """Each system at its best configuration (any slot count, any variant), the ratio of the
    bests, and each best bulk figure against the spawn limit of the way its jobs spawn."""
    systems = {c.system: c for c in every}
    for way, figure in limits.items():
        report.add(f"matrix: spawn limit, {way}", figure, "spawns/s")
    for mode in MODES:
        bests = {
            system: best_cell(measured.samples, [c.name for c in every if c.system == system], mode)
            for system in systems
        }
        for system, cell in bests.items():
            figure = Figure(tuple(measured.samples[cell]))
            limit = limits[systems[system].spawns_with]
            report.add(
                f"matrix best {mode}: {cell[0]}, {cell[1]} slots",
                figure,
                "jobs/s",
                ratio=ratio(median(figure.samples), limit.median)
                + f" of {systems[system].spawns_with} limit",
            )
        ours = measured.samples[bests[JOBYARD]]
        theirs = [measured.samples[cell] for system, cell in bests.items() if system != JOBYARD]
        report.note(
            f"matrix: jobyard best / best peer's best, {mode}",
            Ratios.by_round(ours, theirs).text(),
            GOALS[mode],
        )


def _report_ceilings(
    report: Report,
    every: list[Configuration],
    measured: Measured,
    limits: dict[str, Figure],
    launches: Figure,
) -> None:
    """What bounds the goals on this machine whatever jobyard does with its jobs: one
    client's launch requests alone against the best peer's best one-by-one figure, and the
    spawn limit of jobyard's way against twice the best peer's best bulk figure."""
    peers = [c.name for c in every if c.system != JOBYARD]
    best = {
        mode: median(measured.samples[best_cell(measured.samples, peers, mode)]) for mode in MODES
    }
    report.add(
        "matrix ceiling: one client's launches, no jobs run (SQLite)",
        launches,
        "r/s",
        ratio=ratio(launches.median, best["single"]) + " of the best peer's best single",
    )
    spawn = limits[next(c.spawns_with for c in every if c.system == JOBYARD)]
    report.note(
        "matrix ceiling: jobyard's spawn limit / twice the best peer's best bulk",
        f"{spawn.median:,.0f} / {2 * best['bulk']:,.0f} spawns/s",
        ratio=ratio(spawn.median, 2 * best["bulk"]),
    )


def _report_idle_ceiling(report: Report, ways_in: list[float]) -> None:
    """How long an idle request takes to reach a bare FastAPI handler here: the part of
    jobyard's idle launch→spawned (goal ≤ 2 / 5 ms) spent before the server does any work."""
    ways = [seconds * 1000 for seconds in ways_in]
    report.note(
        "matrix ceiling: an idle request's way in to a bare FastAPI handler, p50/p99",
        f"{percentile(ways, 0.5):.1f} / {percentile(ways, 0.99):.1f} ms ({len(ways)} requests)",
        ratio=f"{percentile(ways, 0.5) / IDLE_GOAL_MS[0]:.2f} of the idle goal's p50",
    )


def _report_idle(report: Report, every: list[Configuration], measured: Measured) -> None:
    """Idle enqueue→start: the peers' in-job stamp, jobyard's `spawned` (its process exists)."""
    for configuration in every:
        starts = [s * 1000 for s in measured.idle.get(configuration.name, [])]
        if not starts:
            continue
        stamp = "launch→spawned" if configuration.system == JOBYARD else "enqueue→in-job start"
        ours = configuration.system == JOBYARD
        goal = f"≤ {IDLE_GOAL_MS[0]} / {IDLE_GOAL_MS[1]} ms" if ours else ""
        p50, p99 = percentile(starts, 0.5), percentile(starts, 0.99)
        report.note(
            f"matrix idle {stamp} p50/p99: {configuration.name}",
            f"{p50:.1f} / {p99:.1f} ms ({len(starts)} jobs)",
            goal,
        )


def print_matrix(every: list[Configuration], measured: Measured, console: Console) -> None:
    """jobs/s medians, a column per slot count and mode, and the ratio rows under them."""
    columns = [(slots, mode) for slots in SLOT_COUNTS for mode in MODES]
    table = Table(
        "system, configuration",
        *(f"{s} slots {m}" for s, m in columns),
        title="like with like: jobs/s (median of rounds; max steal %)",
    )
    for configuration in every:
        for label, modes in _rows(configuration):
            cells = [(configuration.name, s, modes[m]) if m in modes else None for s, m in columns]
            table.add_row(label, *(_cell_text(measured, cell) if cell else "" for cell in cells))
    table.add_row(
        "jobyard / best peer, by round",
        *(measured.against_best_peer(every, s, m).text() for s, m in columns),
    )
    console.print(table)


def _rows(configuration: Configuration) -> Iterator[tuple[str, dict[str, str]]]:
    """A row of single and bulk; a mode beyond those (jobyard's four concurrent clients) gets
    a row of its own in the single columns."""
    yield configuration.name, {mode: mode for mode in MODES}
    for extra in configuration.modes:
        if extra not in MODES:
            yield f"{configuration.name}, {extra}", {MODES[0]: extra}


def _cell_text(measured: Measured, cell: Cell) -> str:
    samples = measured.samples.get(cell)
    if samples is None:
        return ""
    value = median(samples)
    return "failed" if math.isnan(value) else f"{value:,.0f} ({measured.steal[cell]:.0f}%)"
