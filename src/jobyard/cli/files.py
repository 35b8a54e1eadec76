"""Documents users give the commands: JSON or YAML, read safely."""

from __future__ import annotations

import json
from typing import Any

import yaml

from jobyard.cli.connection import Exit, fail


def read_document(text: str, name: str) -> Any:
    """JSON if it parses as JSON, else YAML (a superset of it); a clear error otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return fail(f"{name}: neither JSON nor YAML: {exc}".replace("\n", " "), Exit.USAGE)
