"""A package's allowed_args: the grammar of its entries, and which appended arguments pass.

The arguments checked are what a launch appends: `extra_cli_args` split like a shell would,
minus its `-testvar` pairs, exactly as a launch computes them (`_appended`).
"""

from __future__ import annotations

import time

import pytest

from jobyard.domain import arguments, templates
from jobyard.errors import ValidationFailed

ALLOWED = (
    "-v",
    "--dry-run",
    "--level=*",
    "--mode={fast,slow}",
    "--format=json",
    "--depth *",
    "--color {auto,never}",
    "-o out",
)


def _appended(text: str) -> list[str]:
    _, rest = templates.testvars_from_cli_args(templates.split_cli_args(text))
    return rest


def passes(text: str, allowed: tuple[str, ...] | None = ALLOWED) -> list[str]:
    args = _appended(text)
    arguments.check_appended_args(args, allowed, package="pkg")
    return args


def refused(text: str, allowed: tuple[str, ...] | None = ALLOWED) -> str:
    with pytest.raises(ValidationFailed) as caught:
        passes(text, allowed)
    assert caught.value.field == "extra_cli_args"
    return caught.value.message


# Entries: what a package may declare -------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        None,
        [],
        ["-v"],
        ["--", "*"],
        ["--level=*", "--level *", "--level={a,b}"],  # the same flag in both value forms
        ["-testdir *", "--x.y=1", "-o {a,b,c}", "{start,stop}", "word"],
        ["--level=-1"],  # a value in the same argument may start with "-"
        ["-a"] * 3,
        ["-x"] * arguments.MAX_ENTRIES,
    ],
)
def test_valid_entries(entries: list[str] | None) -> None:
    parsed = arguments.parse_allowed_args(entries)
    assert parsed.entries == tuple(entries or ())


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ("-v", "a list of strings"),
        ([1], "an entry is a string"),
        ([""], "1 to 200 characters"),
        (["-" + "x" * 200], "1 to 200 characters"),
        (["-x"] * (arguments.MAX_ENTRIES + 1), "at most 100 entries"),
        (["-"], "a flag is"),
        (["---x"], "a flag is"),
        (["--=x"], "a flag is"),
        (["-x;rm"], "a flag is"),
        (["-$(id)"], "a flag is"),
        (["--level  *"], "one space"),
        (["--level *  "], "one space"),
        (["--level\t*"], "one space"),
        (["--level\n*"], "one space"),
        ([" -v"], "a flag is"),
        (["--level "], "a value is"),
        (["--level=x y"], "a flag is"),
        (["--level={}"], "a value is"),
        (["--level={a,}"], "a value is"),
        (["--level={a,b"], "a value is"),
        (["--level=a*"], "a value is"),
        (["--level=a=b"], "a value is"),
        (["--level -x"], "cannot start with '-'"),
        (["--level {a,-x}"], "cannot start with '-'"),
        (["{-x,y}"], "cannot start with '-'"),
        (["-testvar"], "-testvar pairs are always allowed"),
        (["--testvar *"], "-testvar pairs are always allowed"),
        (["-testvar=*"], "-testvar pairs are always allowed"),
        (["-v", "-v *"], "declared both alone and with a separate value"),
        (["-v\0"], "a flag is"),
    ],
)
def test_invalid_entries_are_refused_naming_the_field(entries: object, why: str) -> None:
    with pytest.raises(ValidationFailed, match="allowed_args") as caught:
        arguments.parse_allowed_args(entries)  # type: ignore[arg-type]
    assert caught.value.field == "allowed_args"
    assert why in caught.value.message


def test_a_long_bad_entry_is_clipped_in_the_message() -> None:
    with pytest.raises(ValidationFailed) as caught:
        arguments.parse_allowed_args(["--x={" + "a," * 90 + "}"])
    assert len(caught.value.message) < 300


# Matching: what a launch may append --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("-v", ["-v"]),
        ("-v --dry-run -v", ["-v", "--dry-run", "-v"]),
        ("--level=debug", ["--level=debug"]),
        ("--level=", ["--level="]),  # an empty value is still one argument's value
        ("--level=-exec", ["--level=-exec"]),  # one argument: the program reads a value
        ("'--level=x -exec'", ["--level=x -exec"]),  # quoted: still one argument
        ("--level='a b; id'", ["--level=a b; id"]),
        ("--mode=fast", ["--mode=fast"]),
        ("--format=json", ["--format=json"]),
        ("--depth 3", ["--depth", "3"]),
        ("--depth ''", ["--depth", ""]),
        ("--depth '$(id)'", ["--depth", "$(id)"]),
        ("--color never -o out", ["--color", "never", "-o", "out"]),
        ("-testvar a=1 -v -testvar=b=2", ["-v"]),
    ],
)
def test_allowed_forms_pass(text: str, expected: list[str]) -> None:
    assert passes(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-exec sh -c 'id > /tmp/f' ;", '"-exec" is not allowed'),
        ("--level=x -exec", '"-exec" is not allowed'),  # unquoted: two arguments
        ("-v -exec", '"-exec" is not allowed'),
        ("--level", '"--level" takes its value in the same argument (--level=...)'),
        ("--level debug", '"--level" takes its value in the same argument'),
        ("--depth", '"--depth" needs a value after it'),
        ("-v --depth", '"--depth" needs a value after it'),
        ("--depth -exec", 'the value of "--depth" cannot start with \'-\' (got "-exec")'),
        ("--depth --", "cannot start with '-'"),
        ("--depth -testvar a=1", '"--depth" needs a value after it'),
        ("--mode=medium", 'the value of "--mode" must be one of fast, slow, not "medium"'),
        ("--mode=FAST", "must be one of fast, slow"),
        ("--mode='fast '", "must be one of fast, slow"),
        ("--format=xml", "must be one of json"),
        ("--color always", 'the value of "--color" must be one of auto, never, not "always"'),
        ("-o other", 'the value of "-o" must be one of out'),
        ("-oout", '"-oout" is not allowed'),  # no attached short values
        ("-vv", '"-vv" is not allowed'),  # no bundled short flags
        ("-v=1", '"-v=1" is not allowed'),
        ("--v", '"--v" is not allowed'),
        ("--dry-run=yes", '"--dry-run=yes" is not allowed'),
        ("'-v '", '"-v " is not allowed'),  # quoting cannot pad a flag
        ("' -v'", '" -v" is not allowed'),  # a positional value: none are declared
        ("file.txt", '"file.txt" is not allowed'),
        ("''", '"" is not allowed'),
        ("-", '"-" is not allowed'),
        ("--", '"--" is not allowed'),
        ("-- -exec", '"--" is not allowed'),
        ("\\-exec", '"-exec" is not allowed'),
        ("'-'exec", '"-exec" is not allowed'),
        ("$'-exec'", '"$-exec" is not allowed'),
        ("-v;id", '"-v;id" is not allowed'),
        ("'-v\n-exec'", '"-v\\n-exec" is not allowed'),
    ],
)
def test_other_arguments_are_refused_naming_the_argument(text: str, why: str) -> None:
    message = refused(text)
    assert why in message
    assert message.startswith("extra_cli_args: ")
    assert 'package "pkg" allows only "-v", "--dry-run"' in message


def test_without_allowed_args_only_testvars_pass() -> None:
    for allowed in (None, ()):
        assert passes("-testvar a=1 --testvar b=2 -testvar=c=3", allowed) == []
        message = refused("-v", allowed)
        assert message == (
            'extra_cli_args: "-v" is not allowed: package "pkg" allows no appended arguments,'
            " only -testvar name=value pairs"
        )


def test_positional_values_only_when_declared() -> None:
    assert passes("a 'b c' '$(id)'", ("*",)) == ["a", "b c", "$(id)"]
    assert passes("start stop", ("{start,stop}",)) == ["start", "stop"]
    assert passes("now", ("now",)) == ["now"]
    assert "not allowed" in refused("restart", ("{start,stop}",))
    assert '"-exec" is not allowed' in refused("a -exec", ("*",))
    assert '"-" is not allowed' in refused("-", ("*",))


def test_a_double_dash_is_an_argument_like_any_other() -> None:
    allowed = ("--", "*")
    assert passes("-- a b", allowed) == ["--", "a", "b"]
    # What follows "--" is still matched: a value there never starts with "-".
    assert '"-exec" is not allowed' in refused("-- -exec", allowed)
    assert '"-rf" is not allowed' in refused("-- a -rf", allowed)


def test_the_same_flag_may_take_both_value_forms() -> None:
    allowed = ("--level=*", "--level {1,2}")
    assert passes("--level=9 --level 2", allowed) == ["--level=9", "--level", "2"]
    assert "must be one of 1, 2" in refused("--level 9", allowed)


def test_nul_never_reaches_the_check() -> None:
    with pytest.raises(ValidationFailed, match="NUL") as caught:
        templates.split_cli_args("-v\0")
    assert caught.value.field == "extra_cli_args"


def test_long_input_is_checked_quickly_and_reported_briefly() -> None:
    longest = templates.MAX_CLI_ARGS_LENGTH
    started = time.perf_counter()
    assert len(passes("-v " * (longest // 3))) == longest // 3
    message = refused("-v " * 1000 + "-exec" + "y" * (longest - 3005))
    many = "-v " * (longest // 3 - 2) + "-exec"
    assert '"-exec" is not allowed' in refused(many)
    assert time.perf_counter() - started < 1
    assert '"-execyyyy' in message
    assert len(message) < 400


def test_too_long_input_is_refused_before_it_is_split() -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationFailed, match="at most 32768 characters") as caught:
        templates.split_cli_args("y" * 1_000_000)  # one word: shlex would take seconds
    assert time.perf_counter() - started < 0.1
    assert caught.value.field == "extra_cli_args"


def test_parsing_is_cached_per_distinct_list() -> None:
    entries = ("--cached-flag",)
    arguments.check_appended_args(["--cached-flag"], entries, package="p")
    before = arguments._parsed.cache_info().hits
    arguments.check_appended_args(["--cached-flag"], entries, package="p")
    assert arguments._parsed.cache_info().hits == before + 1
