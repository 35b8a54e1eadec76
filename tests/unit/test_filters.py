"""The list grammar: filters, combine, sort, booleans, date-times, whitelists and paging."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobyard.domain import regex
from jobyard.domain.filters import (
    Combine,
    FieldKind,
    FieldSpec,
    Filter,
    Op,
    SortKey,
    check_filter,
    check_sort,
    coerce_bool,
    parse_bool,
    parse_combine,
    parse_datetime,
    parse_filter,
    parse_filters,
    parse_sort,
    typed_value,
)
from jobyard.domain.paging import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PageRequest,
    page_links,
    parse_page_request,
)
from jobyard.errors import ValidationFailed

FIELDS = {
    spec.name: spec.kind
    for spec in (
        FieldSpec("id", FieldKind.INTEGER),
        FieldSpec("name", FieldKind.STRING),
        FieldSpec("package_name", FieldKind.STRING),
        FieldSpec("active", FieldKind.BOOLEAN),
        FieldSpec("use_as_testlist", FieldKind.BOOLEAN),
        FieldSpec("created", FieldKind.DATETIME),
        FieldSpec("tags", FieldKind.ARRAY),
        FieldSpec("testlist", FieldKind.ARRAY),
        FieldSpec("options.tags", FieldKind.ARRAY),
    )
}


# --- parse_filter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags@>{a,b}", Filter("tags", Op.CONTAINS, ("a", "b"))),
        ("package_name=x y", Filter("package_name", Op.EQ, "x y")),
        ("name~DHCP", Filter("name", Op.MATCH, "DHCP")),
        ("testlist@>{cdrouter_nat_1}", Filter("testlist", Op.CONTAINS, ("cdrouter_nat_1",))),
        ("active=false", Filter("active", Op.EQ, "false")),
        ("id>=12", Filter("id", Op.GE, "12")),
        ("use_as_testlist!=true", Filter("use_as_testlist", Op.NE, "true")),
        ("name=a=b", Filter("name", Op.EQ, "a=b")),
        ("id<=3", Filter("id", Op.LE, "3")),
        ("id<3", Filter("id", Op.LT, "3")),
        ("id>3", Filter("id", Op.GT, "3")),
        ("name!~x", Filter("name", Op.NOT_MATCH, "x")),
        ("name~*dhcp", Filter("name", Op.IMATCH, "dhcp")),
        ("name!~*dhcp", Filter("name", Op.NOT_IMATCH, "dhcp")),
        ("tags<@{a}", Filter("tags", Op.CONTAINED_BY, ("a",))),
        ("tags&&{a,b c, d}", Filter("tags", Op.OVERLAPS, ("a", "b c", " d"))),
        ("tags@>{}", Filter("tags", Op.CONTAINS, ())),
        ("tags={x,y}", Filter("tags", Op.EQ, ("x", "y"))),
        ("options.tags@>{nightly}", Filter("options.tags", Op.CONTAINS, ("nightly",))),
        ("_private.x_1=v", Filter("_private.x_1", Op.EQ, "v")),
        ("name=", Filter("name", Op.EQ, "")),
        ("name= spaced ", Filter("name", Op.EQ, " spaced ")),
        ("name=>x", Filter("name", Op.EQ, ">x")),
        ("name<>x", Filter("name", Op.LT, ">x")),
        ("name==x", Filter("name", Op.EQ, "=x")),
        ("name~a{1,3}", Filter("name", Op.MATCH, "a{1,3}")),
    ],
)
def test_parse_filter(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "foo",
        "=x",
        "1id=3",
        "name",
        "name x",
        ".name=x",
        "name.=x",
        "na-me=x",
        " name=x",
        "id?3",
    ],
)
def test_parse_filter_rejects_missing_parts(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_filter(text)
    assert caught.value.message == f'invalid filter "{text}": expected <field><operator><value>'
    assert caught.value.field == "filter"


@pytest.mark.parametrize("text", ["tags@>a", "tags<@a,b", "tags&&{a", "tags@>a}", "tags&&"])
def test_array_operators_need_brace_arrays(text: str) -> None:
    with pytest.raises(ValidationFailed, match="needs a brace array") as caught:
        parse_filter(text)
    assert text in caught.value.message


def test_parse_filters_keeps_order() -> None:
    assert parse_filters(["id>1", "name~x"]) == [
        Filter("id", Op.GT, "1"),
        Filter("name", Op.MATCH, "x"),
    ]
    assert parse_filters([]) == []


@pytest.mark.parametrize(
    "text", ["tags@>{a,b}", "name=a=b", "tags@>{}", "id>=12", "name~*x", "name=x y"]
)
def test_filter_str_round_trips(text: str) -> None:
    assert str(parse_filter(text)) == text


# --- combine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, Combine.INTER),
        ("", Combine.INTER),
        ("inter", Combine.INTER),
        ("union", Combine.UNION),
        ("UNION", Combine.UNION),
        ("Inter", Combine.INTER),
    ],
)
def test_parse_combine(text: str | None, expected: Combine) -> None:
    assert parse_combine(text) is expected


@pytest.mark.parametrize("text", ["and", "or", " union", "x"])
def test_parse_combine_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_combine(text)
    assert caught.value.message == f'invalid type "{text}": must be inter or union'


# --- sort ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("-id,+created", [SortKey("id", True), SortKey("created", False)]),
        ("-created", [SortKey("created", True)]),
        ("name", [SortKey("name", False)]),
        ("-id, created", [SortKey("id", True), SortKey("created", False)]),
        (" created", [SortKey("created", False)]),
        ("id,,", [SortKey("id", False)]),
        (" , ", []),
        ("-options.tags", [SortKey("options.tags", True)]),
        ("- id", [SortKey("id", True)]),
        ("+ name , -id ", [SortKey("name", False), SortKey("id", True)]),
    ],
)
def test_parse_sort(text: str | None, expected: list[SortKey]) -> None:
    assert parse_sort(text) == expected


@pytest.mark.parametrize("text", ["--id", "-", "+", "id desc", "1id", "na-me", "id;drop", "a..b"])
def test_parse_sort_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed, match="invalid sort") as caught:
        parse_sort(text)
    assert caught.value.field == "sort"
    assert text.strip() in caught.value.message


# --- booleans -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_boolean_vocabulary(text: str, expected: bool) -> None:
    assert parse_bool(text, name="detailed", default=not expected) is expected
    assert coerce_bool(text) is expected


@pytest.mark.parametrize("default", [True, False])
def test_parse_bool_default(default: bool) -> None:
    assert parse_bool(None, name="detailed", default=default) is default
    assert parse_bool("", name="detailed", default=default) is default


@pytest.mark.parametrize("text", ["maybe", "2", "t", "yes please"])
def test_parse_bool_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_bool(text, name="detailed", default=False)
    assert caught.value.message == f'invalid detailed "{text}": expected true or false'
    assert caught.value.field == "detailed"


@pytest.mark.parametrize("text", ["", "maybe", "-1"])
def test_coerce_bool_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed, match="expected true or false"):
        coerce_bool(text)


# --- date-times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T10:20", datetime(2024, 3, 5, 10, 20, tzinfo=UTC)),
        ("2024-03-05T10:20:30", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05 10:20:30", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05t10:20:30z", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05T10:20:30Z", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05T10:20:30.5Z", datetime(2024, 3, 5, 10, 20, 30, 500000, tzinfo=UTC)),
        ("2024-03-05T10:20:30.123456789Z", datetime(2024, 3, 5, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2024-03-05T10:20:30+02:00", datetime(2024, 3, 5, 8, 20, 30, tzinfo=UTC)),
        ("2024-03-05T23:30:00-01:30", datetime(2024, 3, 6, 1, 0, tzinfo=UTC)),
        ("2024-03-05T10:20+00:00", datetime(2024, 3, 5, 10, 20, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text, name="run_at")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-3-5",
        "2024-03-05T",
        "2024-03-05T10",
        "2024-03-05T10:20:30.",
        "2024-03-05T10:20:30.1234567890Z",
        "2024-13-01",
        "2023-02-29",
        "2024-03-05T24:00:00",
        "2024-03-05T10:60",
        "2024-03-05T10:20:61",
        "2024-03-05Z",
        "2024-03-05T10:20:30+0200",
        "2024-03-05T10:20:30+24:00",
        "2024-03-05T10:20:30+02:60",
        "0000-01-01",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+01:00",
        "2024-W10-2",
        "20240305",
        "\uff11\uff19\uff19\uff19-01-01",  # full-width digits
    ],
)
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_datetime(text, name="run_at")
    assert caught.value.message == f'invalid run_at "{text}": expected an RFC 3339 date-time'
    assert caught.value.field == "run_at"


# --- check_filter and typed_value ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "typed"),
    [
        ("id>=12", "12", 12),
        ("id=-3", "-3", -3),
        ("id=007", "7", 7),
        ("id<9223372036854775807", "9223372036854775807", 2**63 - 1),
        ("active=false", "false", False),
        ("active=Yes", "true", True),
        ("use_as_testlist!=true", "true", True),
        ("name~DHCP", "DHCP", "DHCP"),
        ("name=a=b", "a=b", "a=b"),
        ("package_name=x y", "x y", "x y"),
        ("name={a,b}", "{a,b}", "{a,b}"),
        ("name>m", "m", "m"),
        ("tags@>{a,b}", ("a", "b"), ("a", "b")),
        ("testlist@>{cdrouter_nat_1}", ("cdrouter_nat_1",), ("cdrouter_nat_1",)),
        ("tags={}", (), ()),
        ("tags!={x}", ("x",), ("x",)),
        ("options.tags&&{a}", ("a",), ("a",)),
        (
            "created>=2024-03-05T10:20:30+02:00",
            "2024-03-05T08:20:30+00:00",
            datetime(2024, 3, 5, 8, 20, 30, tzinfo=UTC),
        ),
        ("created<2024-03-05", "2024-03-05T00:00:00+00:00", datetime(2024, 3, 5, tzinfo=UTC)),
    ],
)
def test_check_filter_normalises(text: str, value: object, typed: object) -> None:
    parsed = parse_filter(text)
    checked = check_filter(parsed, FIELDS)
    assert checked.field == parsed.field
    assert checked.op is parsed.op
    assert checked.value == value
    kind = FIELDS[parsed.field]
    assert typed_value(parsed, kind) == typed
    assert type(typed_value(checked, kind)) is type(typed)
    assert typed_value(checked, kind) == typed


def test_typed_datetime_is_aware_utc() -> None:
    f = parse_filter("created>2024-01-01T00:00:00-05:00")
    value = typed_value(f, FieldKind.DATETIME)
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(0)
    assert value == datetime(2024, 1, 1, 5, tzinfo=timezone.utc)  # noqa: UP017


def test_check_filter_unknown_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_filter(parse_filter("secret=x"), FIELDS)
    assert caught.value.message == 'unknown filter field "secret"'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("id@>{1}", 'operator "@>" cannot be used on integer field "id"'),
        ("name&&{a}", 'operator "&&" cannot be used on string field "name"'),
        ("id~1", 'operator "~" cannot be used on integer field "id"'),
        ("created!~*x", 'operator "!~*" cannot be used on datetime field "created"'),
        ("tags~a", 'operator "~" cannot be used on array field "tags"'),
        ("active>false", 'operator ">" cannot be used on boolean field "active"'),
        ("active~t", 'operator "~" cannot be used on boolean field "active"'),
        ("tags<{a}", 'operator "<" cannot be used on array field "tags"'),
        ("tags=a", '"tags" is an array: compare it with {a,b}'),
        ("id=twelve", "expected a 64-bit integer"),
        ("id=1.5", "expected a 64-bit integer"),
        ("id=", "expected a 64-bit integer"),
        ("id=--1", "expected a 64-bit integer"),
        ("id={1}", "expected a 64-bit integer"),
        ("id=9223372036854775808", "expected a 64-bit integer"),
        ("id=\u0661\u0662", "expected a 64-bit integer"),  # Arabic-Indic digits
        ("active=maybe", "expected true or false"),
        ("created>soon", "expected an RFC 3339 date-time"),
        ("created>2024-02-30", "expected an RFC 3339 date-time"),
    ],
)
def test_check_filter_rejects(text: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_filter(parse_filter(text), FIELDS)
    assert caught.value.message == f'invalid filter "{text}": {words}'


@pytest.mark.parametrize("text", ["name~(", "name!~[a-", "name~*a**", "name!~*(?P<x"])
def test_check_filter_rejects_bad_regex(text: str) -> None:
    with pytest.raises(ValidationFailed, match=r"^invalid regular expression") as caught:
        check_filter(parse_filter(text), FIELDS)
    assert text in caught.value.message


def test_check_filter_leaves_its_input_alone() -> None:
    original = parse_filter("id=007")
    check_filter(original, FIELDS)
    assert original.value == "007"


# --- check_sort ---------------------------------------------------------------------------


def test_check_sort_accepts_known_scalar_fields() -> None:
    keys = parse_sort("-id,+created,name,active")
    assert check_sort(keys, FIELDS) == keys


def test_check_sort_rejects_unknown_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_sort(parse_sort("-id,password"), FIELDS)
    assert caught.value.message == 'unknown sort field "password"'


def test_check_sort_rejects_array_field() -> None:
    with pytest.raises(ValidationFailed, match='array field "tags"'):
        check_sort(parse_sort("tags"), FIELDS)


# --- paging -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "limit", "expected", "offset"),
    [
        (None, None, PageRequest(1, DEFAULT_LIMIT), 0),
        ("", "", PageRequest(1, 25), 0),
        ("3", "10", PageRequest(3, 10), 20),
        ("2", None, PageRequest(2, 25), 25),
        ("1", "none", PageRequest(1, None), 0),
        ("4", "NONE", PageRequest(4, None), 0),
        ("1", str(MAX_LIMIT), PageRequest(1, 1000), 0),
        ("02", "1", PageRequest(2, 1), 1),
    ],
)
def test_parse_page_request(
    page: str | None, limit: str | None, expected: PageRequest, offset: int
) -> None:
    request = parse_page_request(page, limit)
    assert request == expected
    assert request.offset == offset


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "+2", "99999999999"])
def test_parse_page_request_rejects_page(page: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_page_request(page, None)
    assert caught.value.message == f'invalid page "{page}": expected a positive integer'
    assert caught.value.field == "page"


@pytest.mark.parametrize("limit", ["0", "-5", "1001", "all", "10.0", "nones"])
def test_parse_page_request_rejects_limit(limit: str) -> None:
    with pytest.raises(ValidationFailed, match=f'^invalid limit "{limit}": ') as caught:
        parse_page_request("1", limit)
    assert caught.value.field == "limit"


LINK_NAMES = ("first", "last", "current", "total", "limit", "next", "prev")


@pytest.mark.parametrize(
    ("total", "request_", "links"),
    [
        (100, PageRequest(1, 25), (1, 4, 1, 100, 25, 2, None)),
        (101, PageRequest(4, 25), (1, 5, 4, 101, 25, 5, 3)),
        (100, PageRequest(4, 25), (1, 4, 4, 100, 25, None, 3)),
        (1, PageRequest(1, 1), (1, 1, 1, 1, 1, None, None)),
        (5, PageRequest(9, 25), (1, 1, 9, 5, 25, None, 8)),
        (0, PageRequest(1, 25), (1, 0, 0, 0, 25, None, None)),
        (0, PageRequest(3, 25), (1, 0, 0, 0, 25, None, None)),
        # With limit=none everything is on page 1, and `limit` reports max(total, 1).
        (42, PageRequest(1, None), (1, 1, 1, 42, 42, None, None)),
        (42, PageRequest(3, None), (1, 1, 1, 42, 42, None, None)),
        (0, PageRequest(1, None), (1, 0, 0, 0, 1, None, None)),
    ],
)
def test_page_links(total: int, request_: PageRequest, links: tuple[int | None, ...]) -> None:
    assert page_links(total=total, request=request_) == dict(zip(LINK_NAMES, links, strict=True))


def test_page_links_walk_every_row_once() -> None:
    """Following `next` from page 1 visits each page exactly once, as iter_list does."""
    total, seen, page = 53, 0, 1
    while True:
        request = parse_page_request(str(page), "10")
        links = page_links(total=total, request=request)
        seen += min(10, total - request.offset)
        if links["next"] is None:
            break
        page = links["next"]
    assert (page, seen) == (6, 53)


# --- regular expressions: RE2, with a length cap -----------------------------------------


def test_check_filter_takes_a_pattern_up_to_the_cap() -> None:
    pattern = "a" * regex.MAX_PATTERN_CHARS
    assert check_filter(parse_filter(f"name~{pattern}"), FIELDS).value == pattern


def test_check_filter_refuses_a_pattern_past_the_cap_naming_the_filter() -> None:
    pattern = "a" * (regex.MAX_PATTERN_CHARS + 1)
    with pytest.raises(ValidationFailed) as caught:
        check_filter(parse_filter(f"name~*{pattern}"), FIELDS)
    assert caught.value.field == "filter"
    assert caught.value.message.startswith('invalid regular expression "aaaa')
    assert 'in filter "name~*aaa' in caught.value.message
    assert "257 characters long, at most 256 are allowed" in caught.value.message
    assert len(caught.value.message) < 300  # the pattern is not echoed whole


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", "a++", "(?>a)"]
)
def test_check_filter_refuses_what_needs_backtracking(pattern: str) -> None:
    with pytest.raises(ValidationFailed, match=r"^invalid regular expression") as caught:
        check_filter(parse_filter(f"name~{pattern}"), FIELDS)
    assert f'in filter "name~{pattern}"' in caught.value.message


def test_check_filter_refuses_a_pattern_over_the_memory_budget() -> None:
    with pytest.raises(ValidationFailed, match="pattern too large"):
        check_filter(parse_filter("name~\\pL{1000}"), FIELDS)


def test_the_probes_pattern_is_matched_in_linear_time() -> None:
    """`(.*.*…)X` took Python's re 15 s against "completed"; RE2 answers at once."""
    pattern = "(" + ".*" * 32 + ")X"
    started = time.perf_counter()
    assert regex.search(pattern, "completed") is False
    assert regex.search(pattern, "completed" * 1000 + "X") is True
    assert regex.search("(?i)" + pattern, "completedx") is True
    assert regex.search(pattern, None) is None
    assert time.perf_counter() - started < 0.5
