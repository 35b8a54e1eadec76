"""Jobs run as real child processes: cancel, timeout, retries, output caps, exclusive interfaces,
concurrency limits and crash recovery, on both databases."""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.domain.permissions import JOB_TOKEN_SCOPES
from jobyard.domain.run_end import ProcessEnd
from jobyard.errors import Unauthenticated
from jobyard.services import authentication, execution, worker_registry
from jobyard.services.runtime import open_runtime
from jobyard.settings import Settings
from jobyard.store import migrate
from jobyard.worker import engine as engine_module
from tests.api.helpers import create, launch, package, wait_for
from tests.conftest import AUTH, LiveServer


def _runs(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/runs/?filter=job_id={job_id}&sort=attempt&limit=none")
    runs: list[dict[str, Any]] = response.json()["data"]
    return runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_running(client: TestClient, job_id: str) -> dict[str, Any]:
    wait_for(client, job_id, {"running"})
    deadline = time.monotonic() + 10
    while True:
        runs = _runs(client, job_id)
        if runs and runs[-1]["process_id"]:
            return runs[-1]
        assert time.monotonic() < deadline, "the run never recorded its process"
        time.sleep(0.02)


def test_cancel_of_a_pending_job_is_immediate(client: TestClient) -> None:
    pkg = package(client, command=["true"])
    job = launch(client, package_id=pkg["id"], run_at="9999-01-01T00:00:00Z")

    response = client.post(f"/api/v1/jobs/{job['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    events = client.get(f"/api/v1/jobs/{job['id']}/events/").json()["data"]
    assert [(e["from"], e["to"]) for e in events] == [(None, "pending"), ("pending", "cancelled")]
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert again.status_code == 409


def test_cancel_of_a_running_job_kills_its_whole_process_group(client: TestClient) -> None:
    script = "sleep 60 & echo $! ; trap '' TERM; sleep 60"  # ignores SIGTERM: needs SIGKILL
    pkg = package(client, command=["sh", "-c", script])
    job = launch(client, package_id=pkg["id"])
    run = _wait_running(client, job["id"])
    deadline = time.monotonic() + 10
    while not (log := client.get(f"/api/v1/jobs/{job['id']}/log/").json()["data"])["content"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int(log["content"].split()[0])

    client.post(f"/api/v1/jobs/{job['id']}/cancel/")
    done = wait_for(client, job["id"])

    assert done["status"] == "cancelled"
    assert not _alive(run["process_id"])
    assert not _alive(grandchild)
    assert _runs(client, job["id"])[-1]["status"] == "cancelled"


def test_a_run_records_when_its_process_came_to_exist(client: TestClient) -> None:
    """A short job's spawn time comes with its end; a long one's while it runs."""
    short = wait_for(
        client, launch(client, package_id=package(client, command=["true"])["id"])["id"]
    )
    long_job = launch(
        client, package_id=package(client, name="slow", command=["sleep", "30"])["id"]
    )
    running = _wait_running(client, long_job["id"])
    client.post(f"/api/v1/jobs/{long_job['id']}/cancel/")

    [ended] = _runs(client, short["id"])
    times = [
        {k: _when(run[k]) for k in ("started", "spawned", "finished")} for run in (ended, running)
    ]
    assert times[0]["started"] <= times[0]["spawned"] <= times[0]["finished"], ended
    assert times[1]["started"] <= times[1]["spawned"], running
    assert running["finished"] is None


def _when(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp)


def test_a_job_past_its_timeout_is_timed_out(client: TestClient) -> None:
    pkg = package(client, command=["sleep", "30"], timeout=0.5)
    started = time.monotonic()

    done = wait_for(client, launch(client, package_id=pkg["id"])["id"])

    assert done["status"] == "timed_out"
    assert time.monotonic() - started < 10


def test_a_failing_job_is_retried_up_to_its_attempts(client: TestClient) -> None:
    pkg = package(
        client, command=["sh", "-c", "echo attempt $JOBYARD_ATTEMPT; exit 1"], max_attempts=3
    )

    done = wait_for(client, launch(client, package_id=pkg["id"])["id"])

    assert done["status"] == "failed"
    assert done["attempts"] == 3
    runs = _runs(client, done["id"])
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert all(r["status"] == "failed" for r in runs)
    log = client.get(f"/api/v1/jobs/{done['id']}/log/?attempt=2").json()["data"]
    assert log["content"] == "attempt 2\n"


def test_output_over_the_cap_is_truncated_with_a_marker(settings: Settings, tmp_path: Path) -> None:
    capped = Settings(**{**settings.__dict__, "output_cap_bytes": 4096})
    with TestClient(create_app(capped), headers=AUTH) as client:
        pkg = package(client, command=["python3", "-c", "print('x' * 200_000)"])
        done = wait_for(client, launch(client, package_id=pkg["id"])["id"])
        log = client.get(f"/api/v1/jobs/{done['id']}/log/").json()["data"]
        run = _runs(client, done["id"])[0]

    assert done["status"] == "completed"
    assert log["content"].startswith("x" * 4096)
    assert log["content"].endswith("[jobyard: output truncated after 4096 bytes]\n")
    assert log["truncated"] is True
    assert run["truncated"] is True
    assert run["output_bytes"] == 200_001


def _intervals(client: TestClient, job_ids: list[str]) -> list[tuple[datetime, datetime]]:
    spans = []
    for job_id in job_ids:
        run = _runs(client, job_id)[0]
        spans.append(
            (datetime.fromisoformat(run["started"]), datetime.fromisoformat(run["finished"]))
        )
    return sorted(spans)


def _assert_serial(spans: list[tuple[datetime, datetime]]) -> None:
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start >= first_end


def test_two_running_jobs_never_share_an_interface(client: TestClient) -> None:
    config = create(
        client, "configs", {"name": "lab", "interfaces": [{"name": "lan", "value": "eth1"}]}
    )
    pkg = package(client, command=["sleep", "0.3"], config_id=config["id"])
    other = package(client, "other", command=["sleep", "0.3"])

    jobs = [launch(client, package_id=pkg["id"])["id"] for _ in range(3)]
    free = launch(client, package_id=other["id"])["id"]
    for job_id in [*jobs, free]:
        assert wait_for(client, job_id)["status"] == "completed"

    _assert_serial(_intervals(client, jobs))
    assert client.get(f"/api/v1/jobs/{jobs[0]}/").json()["data"]["interface_names"] == ["eth1"]


def test_a_package_concurrency_limit_is_honoured(client: TestClient) -> None:
    pkg = package(client, command=["sleep", "0.2"], concurrency=1)

    jobs = [launch(client, package_id=pkg["id"])["id"] for _ in range(3)]
    for job_id in jobs:
        wait_for(client, job_id)

    _assert_serial(_intervals(client, jobs))


def test_the_child_gets_its_job_id_but_not_the_servers_secrets(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBYARD_ADMIN_TOKEN", "must-not-leak")
    pkg = package(
        client,
        command=["sh", "-c", 'echo "$JOBYARD_JOB_ID ${{JOBYARD_ADMIN_TOKEN:-none}} $GREETING"'],
        env={"GREETING": "hi {who}"},
    )
    job = launch(
        client, package_id=pkg["id"], options={"testvars": [{"name": "who", "value": "you"}]}
    )

    wait_for(client, job["id"])
    log = client.get(f"/api/v1/jobs/{job['id']}/log/").json()["data"]

    assert log["content"] == f"{job['id']} none hi you\n"


def test_runs_left_running_by_a_dead_server_are_ended_at_start(settings: Settings) -> None:
    rt = open_runtime(settings)
    migrate.upgrade(rt.db)
    with TestClient(
        create_app(Settings(**{**settings.__dict__, "workers": 0})), headers=AUTH
    ) as client:
        pkg = package(client, command=["true"])
        job = launch(client, package_id=pkg["id"])
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    dead = worker_registry.WorkerIdentity(id=None, name=f"{socket.gethostname()}:{dead_pid}")
    work = execution.claim_job(rt, worker=dead)
    assert work is not None
    assert work.claim.job.id == int(job["id"])
    rt.db.dispose()

    with TestClient(create_app(settings), headers=AUTH) as client:
        done = client.get(f"/api/v1/jobs/{job['id']}/").json()["data"]
        runs = _runs(client, job["id"])

    assert done["status"] == "lost"
    assert runs[0]["status"] == "lost"


def test_a_stolen_lease_refuses_the_late_result(settings: Settings) -> None:
    short = Settings(**{**settings.__dict__, "lease_seconds": 0.2, "workers": 0})
    with TestClient(create_app(short), headers=AUTH) as client:
        pkg = package(client, command=["true"], max_attempts=2)
        job = launch(client, package_id=pkg["id"])
    rt = open_runtime(short)
    slow = worker_registry.register_worker(rt, slots=1)
    fast = worker_registry.register_worker(rt, slots=1)
    stolen = execution.claim_job(rt, worker=slow)
    assert stolen is not None
    time.sleep(0.4)  # the slow worker misses its heartbeat: the lease lapses

    assert execution.reap_expired(rt) == 1  # attempt 1 is lost; the job waits for attempt 2
    second = execution.claim_job(rt, worker=fast)
    assert second is not None
    assert second.claim.attempt == 2
    late = ProcessEnd(0, None, False, False, 0, False)
    status = execution.finish_claim(rt, claim=stolen.claim, result=late, worker_id=stolen.worker_id)
    assert status == "running"  # refused: the job goes on with attempt 2
    assert worker_registry.heartbeat(
        rt, worker=slow, run_ids=[stolen.claim.run_id], draining=False
    ) == {stolen.claim.run_id}  # and its heartbeat tells the slow worker to stop
    execution.finish_claim(rt, claim=second.claim, result=late, worker_id=second.worker_id)
    with TestClient(create_app(short), headers=AUTH) as client:
        done = client.get(f"/api/v1/jobs/{job['id']}/").json()["data"]
        runs = _runs(client, job["id"])
    rt.db.dispose()

    assert done["status"] == "completed"
    assert [(r["attempt"], r["status"]) for r in runs] == [(1, "lost"), (2, "completed")]


def test_the_reaper_ends_a_run_long_past_its_timeout(settings: Settings) -> None:
    quick = Settings(
        **{**settings.__dict__, "lease_seconds": 1.0, "cancel_grace_seconds": 0.2, "workers": 0}
    )
    with TestClient(create_app(quick), headers=AUTH) as client:
        pkg = package(client, command=["sleep", "60"], timeout=0.1)
        job = launch(client, package_id=pkg["id"])
    rt = open_runtime(quick)
    stubborn = worker_registry.register_worker(rt, slots=1)
    work = execution.claim_job(rt, worker=stubborn)
    assert work is not None
    deadline = time.monotonic() + 2.0  # alive (renewing its lease) but never enforcing
    while time.monotonic() < deadline:
        lost = worker_registry.heartbeat(
            rt, worker=stubborn, run_ids=[work.claim.run_id], draining=False
        )
        if lost:
            break
        execution.reap_expired(rt)
        time.sleep(0.2)
    with TestClient(create_app(quick), headers=AUTH) as client:
        done = client.get(f"/api/v1/jobs/{job['id']}/").json()["data"]
    rt.db.dispose()

    assert lost == {work.claim.run_id}
    assert done["status"] == "timed_out"


def test_relaunch_makes_a_new_job_with_the_same_parameters(client: TestClient) -> None:
    pkg = package(client, command=["echo", "{who}"])
    first = launch(
        client,
        package_id=pkg["id"],
        options={"tags": ["nightly"], "testvars": [{"name": "who", "value": "again"}]},
        context={"ticket": 7},
    )
    wait_for(client, first["id"])

    again = client.post(f"/api/v1/jobs/{first['id']}/relaunch/").json()["data"]
    done = wait_for(client, again["id"])

    assert again["id"] != first["id"]
    assert again["options"]["tags"] == ["nightly"]
    assert again["context"] == {"ticket": 7}
    assert done["status"] == "completed"
    log = client.get(f"/api/v1/jobs/{again['id']}/log/").json()["data"]
    assert log["content"] == "again\n"
    assert client.post("/api/v1/jobs/999/relaunch/").status_code == 404


# A second between lines: under load the output is stored a few hundred ms after it is printed,
# and each line must still arrive before the next is printed.
FOLLOWED = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(1.0)\n"


def test_the_log_is_followed_live_over_server_sent_events(live_server: LiveServer) -> None:
    api = httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH, timeout=30)
    pkg = api.post(
        "/packages/", json={"name": "ticker", "command": [sys.executable, "-c", FOLLOWED]}
    ).json()["data"]
    job = api.post("/jobs/", json={"package_id": pkg["id"]}).json()["data"]

    events = []
    with api.stream("GET", f"/jobs/{job['id']}/log/", headers={"Accept": "text/event-stream"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                events.append({"event": line[7:]})
            elif line.startswith("data: "):
                events[-1]["data"] = json.loads(line[6:])
            elif line.startswith("id: "):
                events[-1]["id"] = line[4:]
            if events and events[-1]["event"] == "end" and "data" in events[-1]:
                break

    output = "".join(e["data"]["content"] for e in events if e["event"] == "output")
    assert output == "0\n1\n2\n"
    assert len([e for e in events if e["event"] == "output"]) >= 2  # it arrived while running
    assert events[-1]["event"] == "end"
    resumed = api.get(
        f"/jobs/{job['id']}/log/",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "2"},
    )
    assert '"content":"1\\n2\\n"' in resumed.text.replace(": ", ":")


def _idle_server(settings: Settings) -> Settings:
    return Settings(**{**settings.__dict__, "workers": 0})


def test_one_batch_claims_in_claim_order_within_package_limits_and_interfaces(
    settings: Settings,
) -> None:
    idle = _idle_server(settings)
    with TestClient(create_app(idle), headers=AUTH) as client:
        config = create(
            client, "configs", {"name": "lab", "interfaces": [{"name": "lan", "value": "eth1"}]}
        )
        free = package(client, "free", command=["true"])
        limited = package(client, "limited", command=["true"], concurrency=1)
        exclusive = package(client, "exclusive", command=["true"], config_id=config["id"])
        low = [launch(client, package_id=free["id"])["id"] for _ in range(2)]
        urgent = launch(client, package_id=free["id"], priority=5)["id"]
        capped = [launch(client, package_id=limited["id"])["id"] for _ in range(2)]
        sharing = [launch(client, package_id=exclusive["id"])["id"] for _ in range(2)]
    rt = open_runtime(idle)
    worker = worker_registry.register_worker(rt, slots=20)

    works = execution.claim_jobs(rt, worker=worker, limit=20)
    again = execution.claim_jobs(rt, worker=worker, limit=20)
    rt.db.dispose()

    claimed = [str(w.claim.job.id) for w in works]
    assert claimed == [urgent, *low, capped[0], sharing[0]]  # one per limit, one per interface
    assert again == []  # the rest wait for the running ones
    assert len({w.token for w in works}) == len(works)
    assert all(w.claim.job.status == "running" and w.claim.attempt == 1 for w in works)


def test_a_job_launched_for_later_queues_behind_the_jobs_due_before_it(
    settings: Settings,
) -> None:
    """Claims go by priority, then by how long a job has been due (its `run_at`), then by
    age: a job launched for later waits behind the jobs that came due before it, and one
    launched with a past `run_at` goes ahead of them (migration 0026)."""
    idle = _idle_server(settings)
    with TestClient(create_app(idle), headers=AUTH) as client:
        pkg = package(client, "due", command=["true"])
        # Taken once the server is up: `now` must be launched before `soon` comes, and a
        # slow start-up took longer than the second between them.
        launched = datetime.now(UTC)
        soon, past = launched + timedelta(seconds=1), launched - timedelta(hours=1)
        later = launch(client, package_id=pkg["id"], run_at=soon.isoformat())["id"]
        now = launch(client, package_id=pkg["id"])["id"]
        overdue = launch(client, package_id=pkg["id"], run_at=past.isoformat())["id"]
        next_day = (launched + timedelta(days=1)).isoformat()
        tomorrow = launch(client, package_id=pkg["id"], run_at=next_day)
        urgent = launch(client, package_id=pkg["id"], run_at=soon.isoformat(), priority=1)["id"]
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    rt = open_runtime(idle)
    worker = worker_registry.register_worker(rt, slots=10)
    works = execution.claim_jobs(rt, worker=worker, limit=10)
    rt.db.dispose()

    assert [str(w.claim.job.id) for w in works] == [urgent, overdue, now, later]
    assert tomorrow["status"] == "pending"


def test_an_idle_worker_starts_a_job_launched_for_later_when_it_comes_due(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle engine sleeps until the next job waiting for a later time comes due, not its
    whole idle wait (made a minute long here: the job would start that much late)."""
    monkeypatch.setattr(engine_module, "IDLE_WAIT_SECONDS", 60.0)
    with TestClient(create_app(settings), headers=AUTH) as client:
        pkg = package(client, "soon", command=["true"])
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        job = launch(client, package_id=pkg["id"], run_at=due.isoformat())
        assert wait_for(client, job["id"], timeout=15)["status"] == "completed"
        (run,) = _runs(client, job["id"])
    assert datetime.fromisoformat(run["started"]) >= due


def test_an_idle_worker_retries_a_job_when_its_retry_delay_is_over(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_WAIT_SECONDS", 60.0)
    with TestClient(create_app(settings), headers=AUTH) as client:
        pkg = package(client, "again", command=["false"], max_attempts=2, retry_delay=1.5)
        job = launch(client, package_id=pkg["id"])
        assert wait_for(client, job["id"], timeout=15)["status"] == "failed"
        first, second = _runs(client, job["id"])
    waited = datetime.fromisoformat(second["started"]) - datetime.fromisoformat(first["finished"])
    assert waited >= timedelta(seconds=1.5)


def test_one_batch_of_ends_refuses_only_the_run_whose_lease_was_taken(settings: Settings) -> None:
    short = Settings(**{**settings.__dict__, "lease_seconds": 0.2, "workers": 0})
    with TestClient(create_app(short), headers=AUTH) as client:
        pkg = package(client, command=["true"])
        first, second = (launch(client, package_id=pkg["id"])["id"] for _ in range(2))
    rt = open_runtime(short)
    worker = worker_registry.register_worker(rt, slots=2)
    works = execution.claim_jobs(rt, worker=worker, limit=2)
    time.sleep(0.4)
    # The renewal is for a whole minute: one of 0.2 s could lapse again before the reaper
    # looks, on a busy machine.
    renewing = open_runtime(Settings(**{**short.__dict__, "lease_seconds": 60.0}))
    worker_registry.heartbeat(
        renewing, worker=worker, run_ids=[works[1].claim.run_id], draining=False
    )
    renewing.db.dispose()
    assert execution.reap_expired(rt) == 1  # the first run's lease lapsed: it is lost
    ok = ProcessEnd(0, None, False, False, 0, False, 4242)
    endings = [execution.ending_of(w.claim, ok, worker_id=w.worker_id) for w in works]

    statuses = execution.end_runs(rt, endings)
    rt.db.dispose()

    assert statuses == {works[0].claim.run_id: "lost", works[1].claim.run_id: "completed"}
    with TestClient(create_app(short), headers=AUTH) as client:
        assert client.get(f"/api/v1/jobs/{first}/").json()["data"]["status"] == "lost"
        assert client.get(f"/api/v1/jobs/{second}/").json()["data"]["status"] == "completed"
        assert _runs(client, second)[0]["process_id"] == 4242
        events = client.get(f"/api/v1/jobs/{second}/events/").json()["data"]
    assert [e["to"] for e in events] == ["pending", "running", "completed"]


def test_a_runs_token_is_good_while_it_runs_for_its_job_alone(settings: Settings) -> None:
    """A job token is a hash on its run: it stands for the job's user, in the job's tenant,
    limited to that job, until the run ends (its run is then no longer found)."""
    idle = Settings(**{**settings.__dict__, "workers": 0})
    with TestClient(create_app(idle), headers=AUTH) as client:
        tenant = client.post("/api/v1/tenants/", json={"name": "acme"}).json()["data"]["id"]
        customer = AUTH | {"Customer-Id": tenant}
        pkg = client.post(
            "/api/v1/packages/", json={"name": "p", "command": ["true"]}, headers=customer
        ).json()["data"]
        client.post("/api/v1/jobs/", json={"package_id": pkg["id"]}, headers=customer)
    rt = open_runtime(idle)
    worker = worker_registry.register_worker(rt, slots=2)
    (work,) = execution.claim_jobs(rt, worker=worker, limit=2)

    principal = authentication.authenticate_token(rt, work.token)
    assert principal.job_id == work.claim.job.id
    assert principal.tenant_id == principal.home_tenant_id == int(tenant)  # and only there
    assert principal.scopes <= JOB_TOKEN_SCOPES
    assert authentication.authenticate_basic(rt, "", work.token).job_id == work.claim.job.id
    with pytest.raises(Unauthenticated):
        authentication.authenticate_token(
            rt, work.token[:-1] + ("A" if work.token[-1] != "A" else "B")
        )

    ended = ProcessEnd(0, None, False, False, 0, False)
    execution.finish_claim(rt, claim=work.claim, result=ended, worker_id=worker.id)
    with pytest.raises(Unauthenticated):
        authentication.authenticate_token(rt, work.token)
    with pytest.raises(Unauthenticated):
        authentication.authenticate_basic(rt, "", work.token)
    rt.db.dispose()
