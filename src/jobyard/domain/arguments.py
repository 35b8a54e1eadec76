"""What a launch may append to a package's command: the forms its `allowed_args` declare.

`extra_cli_args` minus its `-testvar name=value` pairs is appended to the package's argv, and
for most programs an appended argument is code (`find ... -exec sh -c ...`). So nothing is
appended unless the package declares the form, as a list of entries:

- `-v`, `--dry-run`: exactly that argument;
- `--level=*`: that flag with a value in the same argument (`--level=debug`);
- `--level *`: that flag followed by one separate value argument, which never starts with `-`
  (so `--level -exec` is refused);
- `{debug,info}` or a plain word in place of `*`: only those values (`--level={debug,info}`,
  `--level debug`);
- `*` or `{a,b}` alone: positional values, any number of them, none starting with `-`.

Anything else is refused: an argument no entry matches, a flag missing its value. `--` has
no meaning here: it is an argument like any other, allowed only when declared, and what
follows it is matched the same way.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from jobyard.errors import ValidationFailed

MAX_ENTRIES = 100
MAX_ENTRY_LENGTH = 200

# One or two dashes, then a letter or digit: `-v`, `-testdir`, `--log-level`, `--x.y`.
_FLAG = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_.-]*")
# A literal value or a choice: no pattern characters, no whitespace, nothing a reader could
# mistake for another form.
_WORD = re.compile(r"[^\s*{},=]+")
_TESTVAR_FLAGS = frozenset({"-testvar", "--testvar"})
_ALLOWS_NOTHING = "allows no appended arguments, only -testvar name=value pairs"


@dataclass(frozen=True)
class ValuePattern:
    """The values one entry accepts: any (`*`) or a fixed set."""

    choices: frozenset[str] | None  # None: any value

    def matches(self, value: str) -> bool:
        return self.choices is None or value in self.choices

    def describe(self) -> str:
        if self.choices is None:
            return "any value"
        return "one of " + ", ".join(sorted(self.choices))


@dataclass(frozen=True)
class AllowedArgs:
    """A package's parsed `allowed_args`: what each flag may carry, and positional values."""

    entries: tuple[str, ...]
    exact: frozenset[str]  # flags allowed exactly as written
    inline: Mapping[str, tuple[ValuePattern, ...]]  # `--flag=value`
    separate: Mapping[str, tuple[ValuePattern, ...]]  # `--flag value`
    positional: tuple[ValuePattern, ...]

    def describe(self) -> str:
        if not self.entries:
            return _ALLOWS_NOTHING
        forms = ", ".join(json.dumps(e, ensure_ascii=False) for e in self.entries)
        return f"allows only {forms} (and -testvar name=value pairs)"


def _entry_error(entry: object, why: str) -> ValidationFailed:
    shown = json.dumps(entry, ensure_ascii=False) if isinstance(entry, str) else repr(entry)
    message = f"invalid allowed_args entry {_clip(shown)}: {why}"
    return ValidationFailed(message, field="allowed_args")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _value_pattern(entry: str, text: str, *, separate: bool) -> ValuePattern:
    """`*`, `{a,b}` or a plain word; a value given as its own argument never starts with `-`."""
    if text == "*":
        return ValuePattern(None)
    braced = text.startswith("{") and text.endswith("}")
    choices = text[1:-1].split(",") if braced else [text]
    for choice in choices:
        if not _WORD.fullmatch(choice):
            raise _entry_error(
                entry,
                'a value is "*", "{a,b}" or a word without spaces, "*", "{", "}", "," or "="',
            )
        if separate and choice.startswith("-"):
            raise _entry_error(entry, "a value given as its own argument cannot start with '-'")
    return ValuePattern(frozenset(choices))


def _flag(entry: str, text: str) -> str:
    if not _FLAG.fullmatch(text):
        raise _entry_error(
            entry,
            'a flag is "-" or "--" then a letter or digit, then letters, digits, "_", "." or "-"',
        )
    if text in _TESTVAR_FLAGS:
        raise _entry_error(entry, "-testvar pairs are always allowed (they only fill variables)")
    return text


@dataclass
class _Builder:
    exact: set[str]
    inline: dict[str, list[ValuePattern]]
    separate: dict[str, list[ValuePattern]]
    positional: list[ValuePattern]

    def add(self, entry: object) -> None:
        if not isinstance(entry, str):
            raise _entry_error(entry, "an entry is a string")
        if not entry or len(entry) > MAX_ENTRY_LENGTH:
            raise _entry_error(entry, f"an entry has 1 to {MAX_ENTRY_LENGTH} characters")
        flag, space, value = entry.partition(" ")
        if any(c.isspace() for c in flag + value):
            raise _entry_error(entry, 'write "--flag value" with one space, and no other spaces')
        if space:
            self.separate.setdefault(_flag(entry, flag), []).append(
                _value_pattern(entry, value, separate=True)
            )
        elif entry == "--":
            self.exact.add(entry)
        elif entry.startswith("-") and "=" in entry:
            flag, _, value = entry.partition("=")
            self.inline.setdefault(_flag(entry, flag), []).append(
                _value_pattern(entry, value, separate=False)
            )
        elif entry.startswith("-"):
            self.exact.add(_flag(entry, entry))
        else:
            self.positional.append(_value_pattern(entry, entry, separate=True))

    def build(self, entries: tuple[str, ...]) -> AllowedArgs:
        both = sorted(self.exact & set(self.separate))
        if both:
            raise ValidationFailed(
                f'invalid allowed_args: "{both[0]}" is declared both alone and with a separate'
                " value, so an argument after it could be either",
                field="allowed_args",
            )
        return AllowedArgs(
            entries=entries,
            exact=frozenset(self.exact),
            inline={flag: tuple(p) for flag, p in self.inline.items()},
            separate={flag: tuple(p) for flag, p in self.separate.items()},
            positional=tuple(self.positional),
        )


def parse_allowed_args(entries: Sequence[str] | None) -> AllowedArgs:
    """A package's `allowed_args`, checked; None (the default) allows nothing."""
    if entries is None:
        entries = ()
    if isinstance(entries, str) or not isinstance(entries, Sequence):
        raise ValidationFailed("allowed_args is a list of strings, or null", field="allowed_args")
    if len(entries) > MAX_ENTRIES:
        raise ValidationFailed(
            f"allowed_args has at most {MAX_ENTRIES} entries", field="allowed_args"
        )
    builder = _Builder(set(), {}, {}, [])
    for entry in entries:
        builder.add(entry)
    return builder.build(tuple(entries))


@functools.lru_cache(maxsize=1024)
def _parsed(entries: tuple[str, ...] | None) -> AllowedArgs:
    """Packages are few and launches many: parse each distinct list once."""
    return parse_allowed_args(entries)


def _show(arg: str) -> str:
    return _clip(json.dumps(arg, ensure_ascii=False))


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        self.why = why


def _check_flag(arg: str, allowed: AllowedArgs, rest: Iterator[str]) -> None:
    """One argument that starts with "-", and the separate value it takes if any."""
    if arg in allowed.exact:
        return
    flag, equals, value = arg.partition("=")
    if equals:
        patterns = allowed.inline.get(flag, ())
        if any(p.matches(value) for p in patterns):
            return
        if patterns:
            wanted = " or ".join(p.describe() for p in patterns)
            raise _Refused(f"the value of {_show(flag)} must be {wanted}, not {_show(value)}")
        raise _Refused(f"{_show(arg)} is not allowed")
    patterns = allowed.separate.get(arg, ())
    if not patterns and arg in allowed.inline:
        raise _Refused(f"{_show(arg)} takes its value in the same argument ({arg}=...)")
    if not patterns:
        raise _Refused(f"{_show(arg)} is not allowed")
    following = next(rest, None)
    if following is None:
        raise _Refused(f"{_show(arg)} needs a value after it")
    if following.startswith("-"):
        raise _Refused(f"the value of {_show(arg)} cannot start with '-' (got {_show(following)})")
    if not any(p.matches(following) for p in patterns):
        wanted = " or ".join(p.describe() for p in patterns)
        raise _Refused(f"the value of {_show(arg)} must be {wanted}, not {_show(following)}")


def _check_all(args: Sequence[str], allowed: AllowedArgs) -> None:
    rest = iter(args)
    for arg in rest:
        if arg.startswith("-"):
            _check_flag(arg, allowed, rest)
        elif not any(p.matches(arg) for p in allowed.positional):
            raise _Refused(f"{_show(arg)} is not allowed")


def check_appended_args(
    args: Sequence[str], allowed_args: tuple[str, ...] | None, *, package: str
) -> None:
    """Refuse appended arguments the package does not allow, naming the argument and what
    the package allows. `args` are what is left of `extra_cli_args` after `-testvar`."""
    if not args:
        return
    allowed = _parsed(allowed_args)
    try:
        _check_all(args, allowed)
    except _Refused as refused:
        raise ValidationFailed(
            f"extra_cli_args: {refused.why}: package {_show(package)} {allowed.describe()}",
            field="extra_cli_args",
        ) from None
