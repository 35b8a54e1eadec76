"""Who may read `/metrics`: the metrics token or a system admin's token, else nobody but with
`metrics_public`; what it answers parses as Prometheus's text format."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobyard.api.app import create_app
from jobyard.domain.permissions import SYSTEM_TENANT_ID
from jobyard.services import accounts, authentication
from jobyard.services.runtime import Runtime
from jobyard.settings import Settings

SCRAPE = "a-token-for-prometheus"
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "jobyard-dashboard.json"


def _token_of(rt: Runtime, role: str) -> str:
    admin = authentication.console_principal(rt, tenant_id=SYSTEM_TENANT_ID)
    user = accounts.create_user(rt, actor=admin, login=role, role=role, password="pw-" * 4)
    issued = accounts.create_token(
        rt,
        actor=admin,
        name="t",
        scopes=accounts.role_scope_names(role),
        expires=None,
        user_id=user.id,
    )
    return issued.secret


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.with_overrides(metrics_token=SCRAPE))) as client:
        yield client


def test_only_the_metrics_token_or_a_system_admin_reads_metrics(
    guarded: TestClient, settings: Settings
) -> None:
    rt = guarded.app.state.rt  # type: ignore[attr-defined]
    operator = _token_of(rt, "operator")

    def status(token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return guarded.get("/metrics", headers=headers).status_code

    assert status(None) == 401
    assert status("wrong") == 401
    assert status(operator) == 403
    assert status(SCRAPE) == 200
    assert status(settings.admin_token) == 200
    refused = guarded.get("/metrics", headers={"Authorization": f"Bearer {operator}"})
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_public_metrics_parse(settings: Settings) -> None:
    with TestClient(create_app(settings.with_overrides(metrics_public=True))) as client:
        client.get("/healthz")
        answer = client.get("/metrics")
    assert answer.status_code == 200
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert {
        "jobyard_jobs",
        "jobyard_jobs_live",
        "jobyard_queue_depth",
        "jobyard_queue_oldest_age_seconds",
        "jobyard_worker_slots",
        "jobyard_launch_to_start_seconds",
        "jobyard_run_duration_seconds",
        "jobyard_runs_reaped",
        "jobyard_http_requests",
        "jobyard_http_request_duration_seconds",
    } <= names


def test_the_grafana_dashboard_asks_only_for_metrics_that_exist(settings: Settings) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bjobyard_\w+", target["expr"])
    }
    with TestClient(create_app(settings.with_overrides(metrics_public=True))) as client:
        text = client.get("/metrics").text
    exposed = {family.name for family in text_string_to_metric_families(text)}
    assert asked, "the dashboard asks for no jobyard metric"
    assert asked <= exposed
