"""`jsontext` reads and writes what the standard library would, only faster."""

from __future__ import annotations

import json
import random

import pytest

from jobyard import jsontext


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[]",
        '{"a": [1, 2.5, null, true], "b": "é\\u00e9"}',
        "[12345678901234567890123, -98765432109876543210]",  # beyond 64 bits: exact ints
        '["12345678901234567890123"]',  # a long run of digits in a string
        "[1234567890123456789, 123456789012345678]",  # 19 digits, and 18
        "[9223372036854775807, -9223372036854775808]",
        "NaN",  # the standard library accepts it; orjson does not
        '{"deep": ' * 50 + "1" + "}" * 50,
    ],
)
def test_loads_answers_as_the_standard_library(text: str) -> None:
    expected = json.loads(text)
    for given in (text, text.encode()):
        got = jsontext.loads(given)
        assert repr(got) == repr(expected)  # repr: NaN != NaN, and 1 == 1.0 would hide a float


def test_loads_reads_a_long_number_beside_a_lone_surrogate() -> None:
    text = '["\ud800", 1234567890123456789012]'  # a str that UTF-8 cannot hold
    assert repr(jsontext.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ["{", "[1,]", '{"a" 1}', "[" * 100_000])
def test_loads_refuses_what_the_standard_library_refuses(text: str) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(text)
    with pytest.raises((ValueError, RecursionError)):
        jsontext.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True], "b": "é"},
        [2**70, -(2**70)],  # orjson refuses these; the standard library writes them
        {1: "a non-string key"},
        ("a", "tuple"),
    ],
)
def test_dumps_round_trips(value: object) -> None:
    written = jsontext.dumps(value)
    assert json.loads(written) == json.loads(json.dumps(value))
    assert jsontext.dumps_bytes(value) == written.encode()


def test_dumps_writes_compact_utf8_and_null_for_nan() -> None:
    assert jsontext.dumps_bytes({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
    assert jsontext.dumps(float("nan")) == "null"


def _deep_list(depth: int) -> list[object]:
    top: list[object] = []
    inner = top
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    return top


def test_dumps_writes_any_depth() -> None:
    """orjson stops at 255 levels and the standard library near 1,000: a stored value deeper
    than either must still render."""
    for depth in (300, 5_000):
        assert jsontext.dumps(_deep_list(depth)) == "[" * depth + "]" * depth


def test_the_fallback_writes_what_the_standard_library_would() -> None:
    value = {"n": 2**70, "f": [1.5, float("nan"), float("inf")], "s": 'q"\\\n\u00e9', 3: None}
    assert jsontext.dumps(value) == '{"n":1180591620717411303424,"f":[1.5,null,null],' + (
        '"s":"q\\"\\\\\\n\u00e9","3":null}'
    )
    assert jsontext.dumps(["\ud800", 2**70]) == '["\\ud800",1180591620717411303424]'


@pytest.mark.parametrize(
    ("text", "deeper_than_3"),
    [
        ("[[[1]]]", False),
        ("[[[[1]]]]", True),
        ('{"a": {"b": {"c": {}}}}', True),
        ('{"a": {"b": {"c": 1}}}', False),
        ('["[[[[", "]]]]", {"k": "{{{{"}]', False),
        ('["\\\\", "\\"[[[[", [["\\\\\\"]]"]]]', False),
        ("[1, [2, [3, [4]]], 5]", True),
        ("[[],[],[[]],[]]", False),
    ],
)
def test_nesting_depth_is_read_from_the_text(text: str, deeper_than_3: bool) -> None:
    json.loads(text)  # valid JSON, as the check requires
    assert jsontext.nested_deeper_than(text.encode(), 3) is deeper_than_3


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _random_value(rng: random.Random, depth: int) -> object:
    """Nested lists and objects whose strings (keys too) hold brackets, quotes and
    backslashes, as escapes and as text."""
    pick = rng.random()
    if depth == 0 or pick < 0.3:
        return "".join(rng.choice('[]{}"\\ab') for _ in range(rng.randint(0, 4)))
    if pick < 0.65:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {
        str(_random_value(rng, 0)): _random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))
    }


def test_nesting_depth_is_read_from_any_text() -> None:
    rng = random.Random(20261206)
    for _ in range(2_000):
        value = _random_value(rng, rng.randint(0, 7))
        text = json.dumps(value, separators=(",", rng.choice([":", ": "]))).encode()
        for limit in range(6):
            assert jsontext.nested_deeper_than(text, limit) is (_depth(value) > limit), text
