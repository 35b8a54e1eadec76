"""What an operator sees of a running `jobyard serve`, configured by a `jobyard.toml`: JSON
log lines for each job's start and end and each request, with no secret in them, and
`/metrics` in Prometheus's format, its figures moving as jobs run. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from jobyard.client import Client
from tests.e2e.test_serve import serving

SECRET = "s3cret-admin-token"
SCRAPE = "scrape-me-please"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, by name and labels (the parser checks it)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_json_logs_and_metrics_from_a_config_file(
    tmp_path: Path, jobs_run_as: str, database_url: str
) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'admin_token = "{SECRET}"\n'
        'log_format = "json"\n'
        f'metrics_token = "{SCRAPE}"\n'
        f'run_as = "{jobs_run_as}"\n'
        'database_url = "sqlite:///nowhere/overridden.db"\n'
    )
    env = {"JOBYARD_CONFIG": str(config), "JOBYARD_DATABASE_URL": database_url}
    log = tmp_path / "serve.log"
    with serving(env, log) as url, Client(url, SECRET) as api:
        package = api.create_package({"name": "p", "command": ["true"]})
        failing = api.create_package({"name": "f", "command": ["false"]})
        jobs = [api.launch({"package_id": p["id"]}) for p in (package, package, failing)]
        for job in jobs:
            list(api.follow(job["id"]))
        by_query = httpx.get(f"{url}/api/v1/jobs/?token={SECRET}&limit=1")
        refused = httpx.get(f"{url}/metrics")
        scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert by_query.status_code == 200
    assert refused.status_code == 401
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")

    samples = _samples(scraped.text)
    assert _total(samples, "jobyard_runs_ended_total", status="completed") == 2
    assert _total(samples, "jobyard_runs_ended_total", status="failed") == 1
    assert _total(samples, "jobyard_jobs", status="completed") == 2
    assert _total(samples, "jobyard_jobs", status="failed") == 1
    assert _total(samples, "jobyard_launch_to_start_seconds_count") == 3
    assert _total(samples, "jobyard_run_duration_seconds_count") == 3
    launches = _total(
        samples, "jobyard_http_requests_total", method="POST", route="/api/v1/jobs/", status="200"
    )
    assert launches == 3
    assert _total(samples, "jobyard_worker_slots", state="total") >= 2
    assert _total(samples, "jobyard_queue_depth") == 0

    text = log.read_text()
    assert SECRET not in text
    assert SCRAPE not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    events = Counter(line.get("event") for line in lines)
    assert events["job.started"] == 3
    assert events["job.ended"] == 3
    ended = [line for line in lines if line.get("event") == "job.ended"]
    assert sorted((e["status"], e["exit_code"]) for e in ended) == [
        ("completed", 0),
        ("completed", 0),
        ("failed", 1),
    ]
    assert all(e["duration_ms"] >= 0 and e["level"] == "INFO" for e in ended)
    requests = [line for line in lines if line.get("event") == "http.request"]
    assert {"method", "route", "status", "duration_ms"} <= set(requests[0])
    assert any("token=***" in r["message"] for r in requests)
