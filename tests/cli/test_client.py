"""`jobyard.client` against the server's own description and a live server: every operation
of the native API has a client method (or a reason it has none), sync and async."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import typer

from jobyard.api.app import create_app
from jobyard.cli.main import app as command_line
from jobyard.client import AsyncClient, Client, NotFound, Refused
from jobyard.client.calls import COVERED_OTHERWISE, OPERATIONS, Calls
from jobyard.settings import Settings
from tests.cli import models_from_openapi
from tests.cli.conftest import Cli
from tests.conftest import ADMIN_TOKEN

NATIVE = re.compile(r"^/api/v1/|^/authenticate$")


def _template(path: str) -> str:
    """A path with its parameters named alike (`{job_id}`, `{object_id}` → `{id}`)."""
    return re.sub(r"\{[^}]+\}", "{id}", path)


def test_every_operation_of_the_native_api_has_a_client_method() -> None:
    described = {
        (method.upper(), _template(path))
        for path, operations in create_app(Settings()).openapi()["paths"].items()
        if NATIVE.match(path)
        for method in operations
    }
    covered = set(OPERATIONS) | set(COVERED_OTHERWISE)
    assert described - covered == set(), "operations without a client method"
    assert covered - described == set(), "client methods for operations the API lacks"
    for name in {*OPERATIONS.values(), "bulk_launch", "bulk_delete", "interfaces"}:
        assert callable(getattr(Calls, name))
        assert hasattr(Client, name), name
        assert hasattr(AsyncClient, name), name


def test_the_models_are_the_servers_own_description() -> None:
    """`jobyard.client.models` is what `models_from_openapi` makes of today's OpenAPI: a
    field the server adds, drops or retypes fails this until the models are made again."""
    assert models_from_openapi.TARGET.read_text() == models_from_openapi.source()


def test_every_command_has_help_with_an_example() -> None:
    root: Any = typer.main.get_command(command_line)
    server_side = {"serve", "worker", "db", "users", "tokens", "tenants", "version"}
    missing = []
    for name, command in root.commands.items():
        if name in server_side:
            continue
        leaves = command.commands.values() if hasattr(command, "commands") else [command]
        missing += [f"{name} {leaf.name}" for leaf in leaves if "Example:" not in (leaf.help or "")]
    assert missing == []


def test_the_sync_client_lists_pages_and_raises_one_family(cli: Cli) -> None:
    with Client(cli.url, ADMIN_TOKEN) as client:
        package = client.create_package({"name": "paged", "command": ["true"]})
        body = {"package_id": package["id"], "run_at": "2999-01-01T00:00:00Z"}
        launched = client.bulk_launch([body] * 7)
        listed = list(client.jobs([f"package_id={package['id']}"], "id", page_size=3))
        assert [j["id"] for j in listed] == [j["id"] for j in launched]
        with pytest.raises(NotFound) as missing:
            client.get_job(10**9)
        assert (missing.value.status, missing.value.problem["status"]) == (404, 404)
        with pytest.raises(Refused) as refused:
            client.launch({"package_id": package["id"], "priority": 5000})
        assert refused.value.status == 400
        assert "priority" in refused.value.message


def test_the_async_client_launches_and_follows(cli: Cli) -> None:
    async def scenario() -> tuple[str, int | None]:
        async with AsyncClient(cli.url, ADMIN_TOKEN) as client:
            package = await client.create_package(
                {"name": "async-hello", "command": ["echo", "hi there"]}
            )
            job = await client.launch({"package_id": package["id"]})
            text, code = "", None
            async for event in client.follow(job["id"]):
                text += event.text
                if event.kind == "end":
                    code = event.exit_code
            return text, code

    assert asyncio.run(scenario()) == ("hi there\n", 0)
