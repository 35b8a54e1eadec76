"""A live jobyard with two customers and a viewer, and Debian's chromium driven by
Playwright (launched by its executable path: no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jobyard.settings import Settings
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"
OTHER_PASSWORD = "other-password-1"
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    return os.environ.get("JOBYARD_CHROMIUM") or next(
        (found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None
    )


@dataclass(frozen=True)
class Site:
    url: str
    api: httpx.Client
    packages: dict[str, str]  # name -> id, of customer 1
    other_job: str  # a job of customer 2


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dashboard")
    database = folder / "jobyard.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite:///{database}",
        workers=4,
        admin_token=ADMIN_TOKEN,
        admin_password=ADMIN_PASSWORD,
        cancel_grace_seconds=1.0,
        drain_seconds=1.0,
        run_as="server",
        runs_dir=folder / "runs",
    )
    with (
        LiveServer(settings) as server,
        httpx.Client(base_url=f"{server.url}/api/v1", headers=AUTH, timeout=30) as api,
    ):
        yield Site(server.url, api, _packages(api, folder), _second_customer(api))


def _packages(api: httpx.Client, folder: Path) -> dict[str, str]:
    marker = folder / "retried"
    commands = {
        # Fails its first attempt a moment after it starts, then succeeds.
        "flaky": [
            "sh",
            "-c",
            f"echo attempt output; if [ -e {marker} ]; then exit 0; fi;"
            f" touch {marker}; sleep 2; exit 3",
        ],
        # Colour, then lines a little apart: the page shows them as they come.
        "ticker": [
            "sh",
            "-c",
            r"printf '\033[31mred start\033[0m\n';"
            r" for i in 1 2 3; do echo line $i; sleep 0.4; done",
        ],
        "sleeper": ["sleep", "60"],
        "quick": ["true"],
        "failing": ["false"],
        # Nearly 10 MiB of numbered lines (the output cap is 10 MiB), at once.
        "big": ["sh", "-c", "seq -f 'line %09g of a big log' 1 370000"],
    }
    found = {}
    for name, command in commands.items():
        retries = {"max_attempts": 2, "retry_delay": 0} if name == "flaky" else {}
        answer = api.post("/packages/", json={"name": name, "command": command, **retries})
        answer.raise_for_status()
        found[name] = answer.json()["data"]["id"]
    viewer = {"login": "viewer", "password": VIEWER_PASSWORD, "role": "viewer"}
    api.post("/users/", json=viewer).raise_for_status()
    return found


def _second_customer(api: httpx.Client) -> str:
    """Customer 2 with its own admin and one job of its own."""
    tenant = api.post("/tenants/", json={"name": "other"}).json()["data"]["id"]
    as_other = {"Customer-Id": str(tenant)}
    other = {"login": "other-admin", "password": OTHER_PASSWORD, "role": "admin"}
    api.post("/users/", json=other, headers=as_other).raise_for_status()
    package = api.post(
        "/packages/", json={"name": "theirs", "command": ["true"]}, headers=as_other
    ).json()["data"]["id"]
    job = api.post("/jobs/", json={"package_id": package}, headers=as_other)
    job.raise_for_status()
    return str(job.json()["data"]["id"])


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium (Debian's package `chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()
