"""Fixtures of the webhook tests: a server whose dispatcher polls often and retries fast,
allowed to deliver to the loopback (where the test receiver listens)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings
from tests.conftest import AUTH
from tests.e2e.test_fleet import fleet_settings, workers  # noqa: F401 (the fleet's fixtures)
from tests.webhooks.receiver import Receiver

LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_networks": LOOPBACK,
            "webhook_poll_seconds": 0.05,
            "webhook_timeout_seconds": 2.0,
            "webhook_max_attempts": 3,
            "webhook_retry_seconds": 0.1,
            "webhook_retry_max_seconds": 0.2,
            "webhook_disable_after": 2,
        }
    )


@pytest.fixture
def hooks(hook_settings: Settings) -> Iterator[TestClient]:
    """The whole app, dispatcher included, as the admin."""
    with TestClient(create_app(hook_settings), headers=AUTH) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running
