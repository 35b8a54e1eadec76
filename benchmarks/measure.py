"""Repeating a measurement and reporting it: medians with min and max, and ratios against a
baseline measured in the same run (these machines are shared and noisy)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Figure:
    """Several samples of one quantity."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def text(self, unit: str) -> str:
        low, high = min(self.samples), max(self.samples)
        if len(self.samples) == 1:
            return f"{_number(self.median)} {unit}"
        return f"{_number(self.median)} {unit} ({_number(low)}..{_number(high)})"


def _number(value: float) -> str:
    """Three figures at least below ten: a bulk launch's 0.54 s must not read 0.5 against
    its goal of 0.5."""
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


@dataclass
class Report:
    """The rows of the final table."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, name: str, figure: Figure, unit: str, goal: str = "", ratio: str = "") -> None:
        self.rows.append((name, figure.text(unit), ratio, goal))
        Console(stderr=True).print(f"  {name}: {figure.text(unit)} {ratio}")

    def note(self, name: str, value: str, goal: str = "", *, ratio: str = "") -> None:
        self.rows.append((name, value, ratio, goal))
        Console(stderr=True).print(f"  {name}: {value}")

    def print(self) -> None:
        table = Table("measure", "median (min..max)", "ratio", "goal", title="jobyard benchmarks")
        for row in self.rows:
            table.add_row(*row)
        Console(width=150).print(table)


def repeat(runs: int, sample: Callable[[], float]) -> Figure:
    return Figure(tuple(sample() for _ in range(runs)))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else ""


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
