"""The matrix's arithmetic: which system goes when, and the ratios read from the rounds.

A cell is one configuration at one slot count in one mode; its samples are one jobs/s per
round (NaN for a round whose burst failed). Ratios are taken round by round, between figures
measured minutes apart, and summed up as their median and range: the machine drifts more
over the whole matrix than within a round."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Cell = tuple[str, int, str]  # (configuration, slots, mode)


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """The order of round `round_index`: each round starts one system later, so that none
    always goes first (right after another's workers stopped) or last."""
    shift = round_index % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def median(samples: Sequence[float]) -> float:
    kept = [s for s in samples if not math.isnan(s)]
    return statistics.median(kept) if kept else math.nan


@dataclass(frozen=True)
class Ratios:
    """Per-round ratios of one figure to another."""

    values: tuple[float, ...]

    @classmethod
    def by_round(cls, ours: Sequence[float], theirs: Sequence[Sequence[float]]) -> Ratios:
        """`ours[r]` over the best of `theirs` in round r (rounds where either is missing
        are left out)."""
        values = []
        for index, own in enumerate(ours):
            best = max((t[index] for t in theirs if not math.isnan(t[index])), default=math.nan)
            if not math.isnan(own) and not math.isnan(best) and best > 0:
                values.append(own / best)
        return cls(tuple(values))

    def text(self) -> str:
        if not self.values:
            return "n/a"
        low, high = min(self.values), max(self.values)
        return f"{statistics.median(self.values):.2f}x ({low:.2f}..{high:.2f})"


def best_cell(samples: dict[Cell, list[float]], configurations: Sequence[str], mode: str) -> Cell:
    """The cell with the highest median among `configurations` at any slot count in `mode`:
    a system at its best."""
    cells = [cell for cell in samples if cell[0] in configurations and cell[2] == mode]
    return max(cells, key=lambda cell: _or_zero(median(samples[cell])))


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
