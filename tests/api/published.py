"""The OpenAPI document as the server publishes it, for the tests that read it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings

JSON = dict[str, Any]


def published_document(tmp_path_factory: pytest.TempPathFactory) -> JSON:
    """`/openapi.json` of a server on a fresh SQLite file."""
    data = tmp_path_factory.mktemp("openapi")
    settings = Settings(data_dir=data, database_url=f"sqlite:///{data / 'jobyard.db'}", workers=0)
    with TestClient(create_app(settings, run_workers=False)) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    found: JSON = answer.json()
    return found


def operations(document: JSON) -> list[tuple[str, str, JSON]]:
    """(METHOD, path, operation) for every operation."""
    return [(m.upper(), p, o) for p, ops in document["paths"].items() for m, o in ops.items()]
