"""A bulk launch mostly repeats a few jobs, interleaved or in runs: work on items that are
the very same objects is done once for all of them."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_shared(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    key: Callable[[Item], Hashable] = id,
) -> list[Result]:
    """`[work(item) for item in items]`, except that items with the same `key` share the
    result of the first of them (so results must not be changed in place). The key is by
    default the item's identity: equal is not the same ({"k": 1.0} == {"k": 1} in Python).
    An identity is only unique among live objects, which the caller's `items` keep alive."""
    done: dict[Hashable, Result] = {}
    results: list[Result] = []
    for item in items:
        mark = key(item)
        if mark in done:
            results.append(done[mark])
        else:
            result = done[mark] = work(item)
            results.append(result)
    return results
