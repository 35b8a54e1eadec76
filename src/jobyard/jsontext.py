"""JSON text in and out: orjson where it gives the same answer as the standard library, which
takes over where orjson would differ or refuse.

orjson reads an integer beyond 64 bits as a float and will not write one; it refuses NaN and
non-string keys. Such values are rare, so they take the slower standard path; everything
else (every job's columns, every request and response) takes the fast one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Integers of up to 18 digits read the same either way; a run of 19 digits or more might be
# a number orjson would turn into a float (or only a long string: then it is merely slower).
LONG_NUMBER_DIGITS = 19
_LONG_DIGITS_TEXT = re.compile(rf"\d{{{LONG_NUMBER_DIGITS}}}")
_LONG_DIGITS_BYTES = re.compile(rf"\d{{{LONG_NUMBER_DIGITS}}}".encode())


def loads(text: str | bytes) -> Any:
    """Parse JSON exactly as `json.loads` would (its errors included)."""
    if _may_hold_a_long_number(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # it accepts a little more (NaN), or says why not


def _may_hold_a_long_number(text: str | bytes) -> bool:
    if len(text) < LONG_NUMBER_DIGITS:  # most stored values are as short as "{}"
        return False
    if isinstance(text, str):
        return _LONG_DIGITS_TEXT.search(text) is not None
    return _LONG_DIGITS_BYTES.search(text) is not None


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON. NaN and infinities are written as null (JSON has no such numbers)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, or a key that is not a string
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode()
