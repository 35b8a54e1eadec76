"""The fleet's fixtures (a standalone API, worker processes) for every end-to-end test."""

from tests.e2e.test_fleet import api, fleet_settings, workers  # noqa: F401
