"""JSON text in and out: orjson where it gives the same answer as the standard library, which
takes over where orjson would differ or refuse.

orjson reads an integer beyond 64 bits as a float and will not write one; it refuses NaN and
non-string keys. Such values are rare, so they take the slower standard path; everything
else (every job's columns, every request and response) takes the fast one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

import orjson

# Integers of up to 18 digits read the same either way; a run of 19 digits or more might be
# a number orjson would turn into a float (or only a long string: then it is merely slower).
LONG_NUMBER_DIGITS = 19


def loads(text: str | bytes) -> Any:
    """Parse JSON exactly as `json.loads` would (its errors included)."""
    if _may_hold_a_long_number(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # it accepts a little more (NaN), or says why not


def _may_hold_a_long_number(text: str | bytes) -> bool:
    """Whether the text has a run of `LONG_NUMBER_DIGITS` ASCII digits (JSON writes numbers
    in no others). Each digit becomes "0" and the run is found with `bytes.find`: a regular
    expression tries a match at every digit, and takes longer over a bulk launch's body than
    orjson's parse of it."""
    if len(text) < LONG_NUMBER_DIGITS:  # most stored values are as short as "{}"
        return False
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return data.translate(_DIGITS_AS_ZERO).find(_LONG_ZEROS) >= 0


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_ZEROS = b"0" * LONG_NUMBER_DIGITS


def dumps_bytes(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON. NaN and infinities are written as null (JSON has no such numbers).

    `default` turns what JSON cannot hold (datetimes included) into what it can."""
    try:
        if default is None:
            return orjson.dumps(value)
        return orjson.dumps(value, default=default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string, too deep
        return _dumps_without_recursion(value, default).encode()


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode()


def nested_deeper_than(text: bytes, limit: int) -> bool:
    """Whether the valid JSON `text` nests arrays and objects more than `limit` levels deep.

    Measured on the text, not on what it parses to: a walk through a bulk launch's 5,000
    items costs as much as parsing them, these few passes over bytes a fraction of it."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    # Inside strings brackets are text: take escapes out, then every quote delimits one.
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in text else text
    # Of the rest only brackets and quotes count. Two quotes next to each other there (most
    # strings hold no bracket) can go: every bracket keeps the parity of the quotes before
    # it, which is what says whether it lies inside a string; and the split below then
    # makes a few pieces, not one for every string of the text.
    marks = unescaped.translate(None, _NOT_MARKS).replace(b'""', b"")
    brackets = b"".join(marks.split(b'"')[::2]).translate(_AS_SQUARE)
    for _ in range(limit):  # each pass removes the innermost level
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_MARKS = bytes(sorted(set(range(256)) - set(b'[]{}"')))


class _Text(str):
    """Punctuation already written, as opposed to a string value still to encode."""


def _dumps_without_recursion(value: Any, default: Callable[[Any], Any] | None) -> str:
    """What `json.dumps` writes (compact, not ASCII-escaped), for values orjson refuses;
    NaN and infinities as null as orjson does, and at any depth: this walks with a list,
    where the standard library's encoder recurses and stops near a thousand levels."""
    out: list[str] = []
    todo: list[Any] = [value]
    while todo:
        item = todo.pop()
        if type(item) is _Text:
            out.append(item)
        elif isinstance(item, dict):
            out.append("{")
            todo.append(_Text("}"))
            members = [
                part
                for index, (key, member) in enumerate(item.items())
                for part in (_Text(("," if index else "") + _key(key) + ":"), member)
            ]
            todo.extend(reversed(members))
        elif isinstance(item, list | tuple):
            out.append("[")
            todo.append(_Text("]"))
            elements = [
                part
                for index, element in enumerate(item)
                for part in ((_Text(","), element) if index else (element,))
            ]
            todo.extend(reversed(elements))
        else:
            scalar = _scalar(item)
            if scalar is None:
                if default is None:
                    raise TypeError(
                        f"Object of type {type(item).__name__} is not JSON serializable"
                    )
                todo.append(default(item))
            else:
                out.append(scalar)
    return "".join(out)


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else "null"
    return None


def _string(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, so that the text stays UTF-8
        return encode_basestring_ascii(text)
    return encode_basestring(text)


def _key(key: Any) -> str:
    """A member name as the standard library writes it: keys that are not strings become
    their JSON text as a string."""
    if isinstance(key, str):
        return _string(key)
    if key is True or key is False or key is None or isinstance(key, int | float):
        return _string(json.dumps(key))  # 1 -> "1", True -> "true", NaN -> "NaN"
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
