"""A package's sandbox switches (`sandbox`: `network`, `writable_paths`) through the native
API: stored, shown, edited, and refused with a 400 when they are not what the sandbox takes.
(What they do to a running job: tests/integration/test_isolation.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import create

API = "/api/v1"


def test_switches_are_stored_shown_and_edited(client: TestClient) -> None:
    body = {"name": "boxed", "command": ["true"], "sandbox": {"network": False}}
    created = create(client, "packages", body)
    assert created["sandbox"] == {"network": False}
    assert create(client, "packages", {"name": "plain", "command": ["true"]})["sandbox"] == {}

    path = f"{API}/packages/{created['id']}/"
    edited = client.patch(path, json={"sandbox": {"writable_paths": ["/srv/out"]}})
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"]["sandbox"] == {"writable_paths": ["/srv/out"]}
    cleared = client.patch(path, json={"sandbox": None})
    assert cleared.status_code == 200, cleared.text
    assert client.get(path).json()["data"]["sandbox"] == {}


@pytest.mark.parametrize(
    "switches",
    [
        {"network": "no"},
        {"network": 0},
        {"shell": True},
        {"writable_paths": "/srv"},
        {"writable_paths": ["relative/path"]},
        {"writable_paths": ["/srv/../etc"]},
        {"writable_paths": ["/srv/./x"]},
        {"writable_paths": ["/srv//x"]},
        {"writable_paths": ["/srv/x/"]},
        {"writable_paths": ["/"]},
        {"writable_paths": ["/srv/\u0000x"]},
        {"writable_paths": [7]},
        {"writable_paths": ["/a"] * 65},
        [],
        "none",
    ],
)
def test_anything_else_is_a_400(client: TestClient, switches: Any) -> None:
    response = client.post(
        f"{API}/packages/", json={"name": "bad", "command": ["true"], "sandbox": switches}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["error"]
    assert client.get(f"{API}/packages/").json()["links"]["total"] == 0
