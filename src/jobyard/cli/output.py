"""What user commands print: tables and colour on a terminal, plain text when piped (no
escape codes), JSON or YAML for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "completed": "green",
    "completed_with_issues": "yellow",
    "failed": "red",
    "timed_out": "red",
    "lost": "red",
    "cancelled": "dim",
    "running": "cyan",
    "pending": "",
}


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOpt = Annotated[
    Format, typer.Option("--output", "-o", help="table (on a terminal), json or yaml")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON, for scripts (= --output json)")]


def _colour() -> bool | None:
    return False if os.environ.get("NO_COLOR") else None


def console() -> Console:
    """stdout: Rich decides colour from whether it is a terminal (and NO_COLOR)."""
    return Console(no_color=_colour() is False, highlight=False, soft_wrap=False)


def error_console() -> Console:
    return Console(stderr=True, no_color=_colour() is False, highlight=False, soft_wrap=True)


def chosen(output: Format, as_json: bool) -> Format:
    return Format.JSON if as_json else output


def emit(data: Any, output: Format) -> bool:
    """JSON or YAML of `data` on stdout; False when a table is wanted instead."""
    if output is Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return True
    if output is Format.YAML:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return True
    return False


def cell(value: Any) -> str:
    """A value as a table cell: text as it is (never read as markup), lists joined."""
    if value is None:
        return ""
    if isinstance(value, list):
        return escape(" ".join(str(v) for v in value))
    return escape(str(value))


def status_text(status: str) -> str:
    style = STATUS_STYLES.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str = "") -> None:
    """A table that fits the terminal (long cells fold); when piped, tab-separated lines
    under a header, for `cut` and `awk`."""
    out = console()
    if not out.is_terminal:
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(_plain(cell) for cell in row) + "\n")
        return
    shown = Table(*columns, title=title or None, expand=False)
    for row in rows:
        shown.add_row(*row)
    out.print(shown)


def _plain(cell: str) -> str:
    """A cell without Rich markup, for a pipe."""
    return Text.from_markup(cell).plain.replace("\t", " ").replace("\n", " ")


def details(data: Mapping[str, Any]) -> None:
    """One object as `key: value` lines (nested values as JSON)."""
    out = console()
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if out.is_terminal:
            out.print(f"[bold]{key:<{width}}[/bold]  {escape(text)}", highlight=False)
        else:
            sys.stdout.write(f"{key:<{width}}  {text}\n")
