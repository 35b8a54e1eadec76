"""The CDRouter list grammar: `filter`, `type`, `sort` and boolean query parameters.

Parsing only: this module turns client text into checked values; `store/listing.py` compiles
them to SQL. Every bad input raises ValidationFailed with a message that quotes the input.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from jobyard.domain import regex
from jobyard.errors import ValidationFailed


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    MATCH = "~"
    NOT_MATCH = "!~"
    IMATCH = "~*"
    NOT_IMATCH = "!~*"
    CONTAINS = "@>"
    CONTAINED_BY = "<@"
    OVERLAPS = "&&"


ARRAY_OPS = frozenset({Op.CONTAINS, Op.CONTAINED_BY, Op.OVERLAPS})
REGEX_OPS = frozenset({Op.MATCH, Op.NOT_MATCH, Op.IMATCH, Op.NOT_IMATCH})
ORDER_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
EQUALITY_OPS = frozenset({Op.EQ, Op.NE})

# Longest first, so that `<=` is never read as `<` followed by a value starting with `=`.
_OPS_LONGEST_FIRST = sorted(Op, key=lambda op: len(op.value), reverse=True)

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class Filter:
    """One `<field><op><value>` condition; `value` is a tuple when written as `{a,b}`."""

    field: str
    op: Op
    value: str | tuple[str, ...]

    def __str__(self) -> str:
        """The filter as a client would write it, for error messages."""
        return f"{self.field}{self.op.value}{_value_text(self.value)}"


def _value_text(value: str | tuple[str, ...]) -> str:
    # Elements cannot hold commas, so joining gives back exactly the text that was parsed.
    return value if isinstance(value, str) else "{" + ",".join(value) + "}"


def _bad_filter(text: str, why: str) -> ValidationFailed:
    return ValidationFailed(f'invalid filter "{text}": {why}', field="filter")


def _brace_array(value: str) -> tuple[str, ...] | None:
    """`{a,b}` as ("a", "b") and `{}` as (); None when the text is not a brace array."""
    if len(value) < 2 or not (value.startswith("{") and value.endswith("}")):  # noqa: PLR2004
        return None
    inner = value[1:-1]
    return tuple(inner.split(",")) if inner else ()


def parse_filter(text: str) -> Filter:
    """Parse `<field><operator><value>`; the value is everything after the first operator."""
    field = _FIELD.match(text)
    rest = text[field.end() :] if field else ""
    op = next((op for op in _OPS_LONGEST_FIRST if rest.startswith(op.value)), None)
    if field is None or op is None:
        raise _bad_filter(text, "expected <field><operator><value>")
    raw = rest[len(op.value) :]
    array = _brace_array(raw)
    if op in ARRAY_OPS and array is None:
        raise _bad_filter(text, f'operator "{op}" needs a brace array such as {{a,b}}')
    return Filter(field.group(), op, raw if array is None else array)


def parse_filters(texts: Sequence[str]) -> list[Filter]:
    return [parse_filter(text) for text in texts]


class Combine(enum.StrEnum):
    """How several filters combine: all must hold (inter) or any may (union)."""

    INTER = "inter"
    UNION = "union"


def parse_combine(text: str | None) -> Combine:
    if not text:
        return Combine.INTER
    try:
        return Combine(text.lower())
    except ValueError:
        raise ValidationFailed(
            f'invalid type "{text}": must be inter or union', field="type"
        ) from None


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool


def _parse_sort_key(item: str) -> SortKey:
    descending = item.startswith("-")
    # A "+" decoded from a query string arrives as a space, which strip() already removed.
    name = item[1:].strip() if item[:1] in {"-", "+"} else item
    if not _FIELD.fullmatch(name):
        raise ValidationFailed(
            f'invalid sort "{item}": expected a field name, optionally prefixed by - or +',
            field="sort",
        )
    return SortKey(name, descending)


def parse_sort(text: str | None) -> list[SortKey]:
    """`-id,+created,name`: a leading `-` sorts descending; blank items are ignored."""
    if not text:
        return []
    return [_parse_sort_key(item.strip()) for item in text.split(",") if item.strip()]


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _bool_or_none(text: str) -> bool | None:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def parse_bool(text: str | None, *, name: str, default: bool) -> bool:
    """A boolean query parameter; absent or empty means `default`."""
    if not text:
        return default
    value = _bool_or_none(text)
    if value is None:
        raise ValidationFailed(f'invalid {name} "{text}": expected true or false', field=name)
    return value


def coerce_bool(value: str) -> bool:
    """A boolean filter value, with the same vocabulary as parse_bool but no default."""
    result = _bool_or_none(value)
    if result is None:
        raise ValidationFailed(f'invalid boolean "{value}": expected true or false')
    return result


_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _zone(text: str | None) -> timezone:
    if text is None or text in {"Z", "z"}:
        return UTC  # naive input is taken as UTC
    offset = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    if offset >= timedelta(hours=24) or int(text[4:6]) > 59:  # noqa: PLR2004
        raise ValueError(text)
    return timezone(-offset if text[0] == "-" else offset)


@functools.lru_cache(maxsize=256)  # a bulk launch repeats the same run_at many times
def _datetime_or_none(text: str) -> datetime | None:
    """Our own RFC 3339 reader: fromisoformat() accepts more forms and only 6 fraction digits."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    # Python keeps microseconds, so digits beyond the sixth are dropped, not rounded.
    micro = int(((match["fraction"] or "") + "000000")[:6])
    year, month, day = (int(part) for part in match["date"].split("-"))
    try:
        local = datetime(
            year,
            month,
            day,
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            micro,
            tzinfo=_zone(match["zone"]),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # out-of-range parts, or an offset past year 1/9999
        return None


def parse_datetime(text: str, *, name: str) -> datetime:
    """An RFC 3339 date-time (or bare date) as an aware UTC datetime; naive means UTC."""
    value = _datetime_or_none(text)
    if value is None:
        raise ValidationFailed(
            f'invalid {name} "{text}": expected an RFC 3339 date-time', field=name
        )
    return value


class FieldKind(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    ARRAY = "array"


@dataclass(frozen=True)
class FieldSpec:
    """A field a resource lets clients filter and sort on."""

    name: str
    kind: FieldKind


ALLOWED_OPS: Mapping[FieldKind, frozenset[Op]] = {
    FieldKind.STRING: EQUALITY_OPS | ORDER_OPS | REGEX_OPS,
    # `<@` on a number: the value is one of a set, `id<@{3,7}` (as a one-element array
    # would be contained by it).
    FieldKind.INTEGER: EQUALITY_OPS | ORDER_OPS | {Op.CONTAINED_BY},
    FieldKind.DATETIME: EQUALITY_OPS | ORDER_OPS,
    FieldKind.BOOLEAN: EQUALITY_OPS,
    FieldKind.ARRAY: EQUALITY_OPS | ARRAY_OPS,
}

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INT64 = range(-(2**63), 2**63)  # what both databases can compare against


def _integer(f: Filter) -> int:
    text = _value_text(f.value).strip()
    if _INTEGER.fullmatch(text) and int(text) in _INT64:
        return int(text)
    raise _bad_filter(str(f), "expected a 64-bit integer")


def _boolean(f: Filter) -> bool:
    value = _bool_or_none(_value_text(f.value))
    if value is None:
        raise _bad_filter(str(f), "expected true or false")
    return value


def _datetime(f: Filter) -> datetime:
    value = _datetime_or_none(_value_text(f.value))
    if value is None:
        raise _bad_filter(str(f), "expected an RFC 3339 date-time")
    return value


def _array(f: Filter) -> tuple[str, ...]:
    if isinstance(f.value, str):
        raise _bad_filter(str(f), f'"{f.field}" is an array: compare it with {{a,b}}')
    return f.value


def _integers(f: Filter) -> tuple[int, ...]:
    return tuple(_integer(Filter(f.field, Op.EQ, item)) for item in _array(f))


Value = str | int | bool | datetime | tuple[str, ...] | tuple[int, ...]


def typed_value(f: Filter, kind: FieldKind) -> Value:
    """The filter's value converted for a field of `kind` (datetimes aware, in UTC)."""
    if kind is FieldKind.INTEGER:
        return _integers(f) if f.op is Op.CONTAINED_BY else _integer(f)
    if kind is FieldKind.BOOLEAN:
        return _boolean(f)
    if kind is FieldKind.DATETIME:
        return _datetime(f)
    if kind is FieldKind.ARRAY:
        return _array(f)
    # A scalar string field compares with the text as written, braces included.
    return _value_text(f.value)


def _normalised(value: Value) -> str | tuple[str, ...]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return tuple(str(item) for item in value)
    return value


def _check_regex(f: Filter, pattern: str) -> None:
    try:
        regex.check(pattern)
    except regex.PatternRefused as refused:
        raise ValidationFailed(
            f'invalid regular expression "{_shortened(pattern)}" in filter'
            f' "{_shortened(str(f))}": {refused}',
            field="filter",
        ) from None


def _shortened(text: str, keep: int = 80) -> str:
    return text if len(text) <= keep else text[:keep] + "…"


def check_filter(f: Filter, fields: Mapping[str, FieldKind]) -> Filter:
    """Check `f` against a resource's whitelist; return it with its value normalised."""
    kind = fields.get(f.field)
    if kind is None:
        raise ValidationFailed(f'unknown filter field "{f.field}"', field="filter")
    if f.op not in ALLOWED_OPS[kind]:
        raise _bad_filter(str(f), f'operator "{f.op}" cannot be used on {kind} field "{f.field}"')
    value = typed_value(f, kind)
    if f.op in REGEX_OPS:
        _check_regex(f, str(value))
    return Filter(f.field, f.op, _normalised(value))


def check_sort(keys: list[SortKey], fields: Mapping[str, FieldKind]) -> list[SortKey]:
    """Check sort keys against a resource's whitelist; arrays have no order."""
    for key in keys:
        kind = fields.get(key.field)
        if kind is None:
            raise ValidationFailed(f'unknown sort field "{key.field}"', field="sort")
        if kind is FieldKind.ARRAY:
            raise ValidationFailed(f'cannot sort by array field "{key.field}"', field="sort")
    return list(keys)
