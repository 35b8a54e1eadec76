"""`jobyard.client.models` made from the server's OpenAPI description: one TypedDict per
answer object (`...Out`). `python -m tests.cli.models_from_openapi` writes the module again;
`test_client` fails when the committed one differs from what the server describes."""

from __future__ import annotations

import keyword
import subprocess
import sys
from pathlib import Path
from typing import Any

from jobyard.api.app import create_app
from jobyard.settings import Settings

TARGET = Path(__file__).resolve().parents[2] / "src" / "jobyard" / "client" / "models.py"
RUFF = Path(sys.executable).with_name("ruff")
HEADER = '''"""The objects the native API answers with, as TypedDicts: made from the server's
OpenAPI description by `tests/cli/models_from_openapi.py` (a test holds them to it). Do not
edit by hand: run `python -m tests.cli.models_from_openapi`."""

from __future__ import annotations

from typing import Any, Literal, TypedDict
'''
SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def _name(component: str) -> str:
    return component.removesuffix("Out")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _name(schema["$ref"].rsplit("/", 1)[1])
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            shown = list(dict.fromkeys(_type(option) for option in schema[combined]))
            return " | ".join(sorted(shown, key=lambda t: t == "None"))
    return _plain_type(schema)


def _plain_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "null":
        return "None"
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object":
        return "dict[str, Any]"
    if isinstance(kind, list):
        return " | ".join(_type({**schema, "type": k}) for k in kind)
    return SCALARS.get(str(kind), "Any")


def _enum(name: str, schema: dict[str, Any]) -> str:
    values = ", ".join(f'"{value}"' for value in schema["enum"])
    return f"\n\n{name} = Literal[{values}]"


def _typed_dict(name: str, schema: dict[str, Any]) -> str:
    fields = {key: _type(value) for key, value in schema.get("properties", {}).items()}
    if all(key.isidentifier() and not keyword.iskeyword(key) for key in fields):
        lines = [f"    {key}: {kind}" for key, kind in fields.items()] or ["    pass"]
        return f"\n\nclass {name}(TypedDict):\n" + "\n".join(lines)
    # A key Python cannot spell as a name (an event's `from`): the functional form.
    members = ", ".join(f'"{key}": {kind}' for key, kind in fields.items())
    return f'\n\n{name} = TypedDict("{name}", {{{members}}})'


def source() -> str:
    components = create_app(Settings()).openapi()["components"]["schemas"]
    parts = [HEADER]
    for component, schema in sorted(components.items()):
        if "enum" in schema:
            parts.append(_enum(component, schema))
    for component, schema in sorted(components.items()):
        if component.endswith("Out"):
            parts.append(_typed_dict(_name(component), schema))
    return _tidy("".join(parts) + "\n")


def _tidy(text: str) -> str:
    """As `ruff check --fix` and `ruff format` leave it, so that the file is checked as is."""
    for command in (["check", "--fix", "--quiet", "-"], ["format", "-"]):
        run = [str(RUFF), *command, "--stdin-filename", str(TARGET)]
        text = subprocess.run(run, input=text, capture_output=True, text=True, check=False).stdout
    return text


if __name__ == "__main__":
    TARGET.write_text(source())
