"""Regular expressions in filters: RE2's syntax, matched in time linear in the text.

A backtracking engine (Python's `re`) takes minutes over `(.*.*…)X` and a nine-letter
status, holding the GIL meanwhile, so every thread of the server waits. RE2 never
backtracks: it refuses what needs backtracking (backreferences, lookaround), and a length
cap and its memory budget bound the size of what it compiles.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

MAX_PATTERN_CHARS = 256
# RE2's budget for a pattern's program and its match cache: a pattern within the length
# cap that needs more (nested counted repeats) does not compile.
MEMORY_BYTES = 1 << 20
CACHED_PATTERNS = 64  # at most this many budgets are held at once
IGNORE_CASE = "(?i)"  # RE2 and PostgreSQL both read this flag at the start of a pattern


class PatternRefused(ValueError):
    """A pattern RE2 does not compile; the message says why."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = MEMORY_BYTES
    options.log_errors = False  # a refused pattern is the client's error, answered to it
    return options


_OPTIONS = _options()


def _reason(error: Exception) -> str:
    reason = error.args[0] if error.args else "does not compile"
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    if "perl operator" in text or "escape sequence" in text:
        text += " (RE2 syntax: no backreferences or lookaround)"
    return text


@functools.lru_cache(maxsize=CACHED_PATTERNS)
def compiled(pattern: str) -> Any:
    """`pattern` compiled by RE2; PatternRefused if it does not compile."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        raise PatternRefused(_reason(error)) from None


def check(pattern: str) -> None:
    """Raise PatternRefused unless `pattern` is short enough and compiles."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternRefused(
            f"{len(pattern)} characters long, at most {MAX_PATTERN_CHARS} are allowed"
        )
    compiled(pattern)


def search(pattern: str, text: object) -> bool | None:
    """Whether `pattern` matches anywhere in `text` (SQL's REGEXP: NULL for a NULL text)."""
    if text is None:
        return None
    return compiled(pattern).search(text if isinstance(text, str) else str(text)) is not None
