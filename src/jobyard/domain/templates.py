"""Argv and text templates with `{name}` placeholders, and `extra_cli_args` splitting.

Nothing here goes near a shell or str.format: a placeholder is a plain name looked up in a
mapping (no attributes, indexes, conversions or format specs), and a rendered argv element
stays one element whatever its value holds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from jobyard.errors import ValidationFailed

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# `{{` and `}}` are escapes; a `{...}` without inner braces is a placeholder; a lone brace is
# unbalanced. Alternation order matters: escapes are tried before placeholders.
_TOKEN = re.compile(r"\{\{|\}\}|\{(?P<name>[^{}]*)\}|(?P<lone>[{}])")


class _Piece(NamedTuple):
    text: str  # literal text, or the variable name when `variable` is set
    variable: bool


def _tokens(template: str, where: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    position = 0
    for match in _TOKEN.finditer(template):
        pieces.append(_Piece(template[position : match.start()], variable=False))
        position = match.end()
        if match["lone"] is not None:
            raise ValidationFailed(
                f'invalid {where} "{template}": unbalanced "{match["lone"]}"'
                ' (write "{{" or "}}" for a literal brace)'
            )
        name = match["name"]
        if name is None:
            pieces.append(_Piece(match.group()[0], variable=False))
        elif VARIABLE_NAME.fullmatch(name):
            pieces.append(_Piece(name, variable=True))
        else:
            raise ValidationFailed(
                f'invalid placeholder "{match.group()}" in {where}: a placeholder is a name'
                ' of letters, digits, "_" and "-" that does not start with a digit or "-"'
            )
    pieces.append(_Piece(template[position:], variable=False))
    return pieces


def _render(template: str, variables: Mapping[str, str], where: str) -> str:
    out: list[str] = []
    for piece in _tokens(template, where):
        if not piece.variable:
            out.append(piece.text)
        elif piece.text in variables:
            out.append(variables[piece.text])
        else:
            raise ValidationFailed(f'unknown variable "{piece.text}" in {where}')
    rendered = "".join(out)
    if "\0" in rendered:  # no exec() or environment can carry a NUL byte
        raise ValidationFailed(f'invalid {where} "{template}": its value holds a NUL character')
    return rendered


def _check_sequence(template: Sequence[str]) -> None:
    # A bare string is a Sequence[str] too, and would be rendered one character per element.
    if isinstance(template, str):
        raise TypeError("an argv template is a sequence of strings, not a string")


def render_argv(template: Sequence[str], variables: Mapping[str, str]) -> list[str]:
    """Fill each argv element's placeholders; each element stays exactly one element."""
    _check_sequence(template)
    return [_render(element, variables, "command") for element in template]


def render_text(template: str, variables: Mapping[str, str], *, where: str = "template") -> str:
    """Fill one string's placeholders (interface templates, environment values)."""
    return _render(template, variables, where)


def template_variables(template: Sequence[str]) -> set[str]:
    """The variable names an argv template uses; raises if the template is malformed."""
    _check_sequence(template)
    return {
        piece.text
        for element in template
        for piece in _tokens(element, "command")
        if piece.variable
    }


# shlex builds each word a character at a time, in time quadratic in the word's length (a
# single 1 MB word takes seconds of CPU); real command lines are far shorter than this.
MAX_CLI_ARGS_LENGTH = 32 * 1024


def split_cli_args(text: str) -> list[str]:
    """Split `extra_cli_args` as a POSIX shell would, without comments or expansion."""
    if not text.strip():
        return []  # the usual case, and shlex costs microseconds even for nothing
    if len(text) > MAX_CLI_ARGS_LENGTH:
        raise ValidationFailed(
            f"invalid extra_cli_args: at most {MAX_CLI_ARGS_LENGTH} characters",
            field="extra_cli_args",
        )
    try:
        args = shlex.split(text, comments=False, posix=True)
    except ValueError as error:
        raise ValidationFailed(
            f"invalid extra_cli_args: {str(error).lower()}", field="extra_cli_args"
        ) from None
    if any("\0" in arg for arg in args):
        raise ValidationFailed(
            "invalid extra_cli_args: NUL characters are not allowed", field="extra_cli_args"
        )
    return args


_TESTVAR_FLAGS = ("-testvar", "--testvar")


def _testvar_pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise ValidationFailed(
            f'invalid extra_cli_args: -testvar needs name=value, got "{text}"',
            field="extra_cli_args",
        )
    return name, value


def testvars_from_cli_args(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Take `-testvar name=value` (or `--testvar`, or `-testvar=name=value`) out of `args`.

    Returns the variables (a later pair wins) and the other arguments in their order.
    """
    variables: dict[str, str] = {}
    remaining: list[str] = []
    items = iter(args)
    for arg in items:
        flag, equals, inline = arg.partition("=")
        if flag not in _TESTVAR_FLAGS:
            remaining.append(arg)
            continue
        pair = inline if equals else next(items, None)
        if pair is None:
            raise ValidationFailed(
                f'invalid extra_cli_args: "{arg}" needs name=value after it',
                field="extra_cli_args",
            )
        name, value = _testvar_pair(pair)
        variables[name] = value
    return variables, remaining
