"""Work shared among items that are the very same objects, in runs or interleaved."""

from __future__ import annotations

from jobyard.repeats import map_shared


def test_the_same_object_anywhere_in_the_list_shares_one_result() -> None:
    first, second = {"package": 1}, {"package": 2}
    calls: list[object] = []

    results = map_shared(lambda item: calls.append(item) or [item], [first, second, first, second])

    assert calls == [first, second]
    assert results[0] is results[2]
    assert results[1] is results[3]
    assert results[0] == [first]
    assert results[1] == [second]


def test_equal_objects_that_are_not_the_same_are_worked_apart() -> None:
    """{"k": 1.0} == {"k": 1} in Python; each keeps its own result."""
    whole, fraction = {"k": 1}, {"k": 1.0}

    results = map_shared(repr, [whole, fraction, whole])

    assert results == ["{'k': 1}", "{'k': 1.0}", "{'k': 1}"]


def test_a_key_decides_what_is_shared() -> None:
    assert map_shared(str.upper, ["a", "b", "A"], key=str.lower) == ["A", "B", "A"]
