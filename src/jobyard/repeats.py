"""A bulk launch mostly repeats one job. Work on a run of equal items is done once."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_repeats(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    same: Callable[[Item, Item], bool] = operator.eq,
) -> list[Result]:
    """`[work(item) for item in items]`, except that an item the same as the one before it
    shares that one's result (so the results must not be changed in place)."""
    results: list[Result] = []
    previous: tuple[Item, Result] | None = None
    for item in items:
        if previous is None or not same(item, previous[0]):
            previous = (item, work(item))
        results.append(previous[1])
    return results
