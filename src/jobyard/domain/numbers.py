"""Integers given as text by clients: ASCII digits only, in the range a column can hold.

`int()` accepts any Unicode decimal digit (a fullwidth one gives a number; a superscript
passes `str.isdigit()` and then fails) and any length, so
every number a request carries as text (path ids, query parameters, headers, body
references) is read here and nowhere else.
"""

from __future__ import annotations

import re

MAX_INT64 = 2**63 - 1  # the largest value either database stores in a BIGINT

# ASCII only: `\d` and str.isdigit() would take Unicode digits too. 19 digits hold MAX_INT64.
_DIGITS = re.compile(r"[0-9]{1,19}")


def ascii_int(text: str, *, low: int = 0, high: int = MAX_INT64) -> int | None:
    """The integer `text` spells in ASCII digits, when it lies in low..high; None otherwise
    (a sign, a space, any other character, or too large)."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None
