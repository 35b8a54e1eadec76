"""One rule for what is not set, on every native object (docs/api.md, "Conventions"): every
field is always there, in every state; a value not set yet is null; lists are [] (never
null); where the cdrouter client reads a field and refuses null, CDRouter's own "0" or ""."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
from fastapi.testclient import TestClient

from tests.api.helpers import create, launch, package, wait_for

API = "/api/v1"

# Per kind: the fields that may be null (each a value not set yet, or, for a package's
# negative_results, "no negative end"), and those that may hold CDRouter's unset "0" or "".
NULLABLE: dict[str, set[str]] = {
    "job": {
        "started",
        "finished",
        "exit_code",
        "result_id",
        "ics_interface_name",
        "outcome.status",
        "outcome.result",
        "options.testvars.action",
    },
    "run": {"spawned", "finished", "exit_code", "signal", "process_id"},
    "package": {"negative_results", "keep_days", "keep_last", "output_days"},
    "device": set(),
    "config": set(),
    "user": set(),
    "token": {"expires", "last_used"},
    "customer": set(),
    "worker": {"stopped"},
    "job_event": {"from", "user_id"},
    "audit_event": {"user_id", "token_id", "object_id"},
    "result": {"by"},
    "log": {"run_id", "attempt"},
    "webhook": {"package_id", "description", "disabled_reason"},
    "webhook_delivery": {
        "job_id",
        "next_attempt",
        "last_status_code",
        "last_error",
        "delivered",
        # A ping is about no job; a job deleted before its event was dispatched is null.
        "payload.job_id",
        "payload.status",
        "payload.job",
    },
}
# A package's negative_results: null is "no negative end" (never completes with issues), which
# [] is not (any result may then complete with issues).
NULL_IS_A_VALUE = {
    ("package", "negative_results"),
    # The customer's retention, not the package's own: a value, as docs/api.md says.
    ("package", "keep_days"),
    ("package", "keep_last"),
    ("package", "output_days"),
}
CDROUTER_UNSET: dict[str, set[str]] = {
    "job": {
        "device_id",
        "device_name",
        "config_id",
        "config_name",
        "options.begin_at",
        "options.end_at",
        "options.extra_cli_args",
        "options.testvars.group",
        "options.testvars.default",
    },
    "package": {
        "config_id",
        "device_id",
        "description",
        "note",
        "test_count",
        "agent_id",
        "extra_cli_args",
    },
    "device": {"description"},
    "config": {"description"},
    "user": {"description"},
    "log": {"content"},
    "job_event": {"reason"},
}


# The schema `/openapi.json` declares for each kind.
DECLARED = {
    "job": "JobOut",
    "run": "RunOut",
    "package": "PackageOut",
    "device": "DeviceOut",
    "config": "ConfigOut",
    "user": "UserOut",
    "token": "TokenOut",
    "customer": "CustomerOut",
    "worker": "WorkerOut",
    "job_event": "EventOut",
    "audit_event": "AuditEventOut",
    "result": "ResultOut",
    "log": "LogOut",
    "webhook": "WebhookOut",
    "webhook_delivery": "WebhookDeliveryOut",
}


def conforms(document: dict[str, Any], kind: str, sample: dict[str, Any]) -> None:
    """The sample has exactly the declared fields, each of the declared type."""
    components = document["components"]
    declared = components["schemas"][DECLARED[kind]]
    assert set(declared.get("required", [])) <= set(sample) <= set(declared["properties"]), kind
    schema = {"$ref": f"#/components/schemas/{DECLARED[kind]}", "components": components}
    jsonschema_rs.Draft202012Validator(schema).validate(sample)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; a list of objects contributes its items' fields."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): value}
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        flat = {prefix.rstrip("."): value}
        for item in value:
            flat.update(_flatten(item, prefix))
        return flat
    return {prefix.rstrip("."): value}


def check(kind: str, samples: list[dict[str, Any]], document: dict[str, Any]) -> None:
    """The rule over several states of one kind of object, and what the API declares."""
    assert samples, kind
    for sample in samples:
        conforms(document, kind, sample)
    keys = [set(sample) for sample in samples]
    assert all(k == keys[0] for k in keys), (kind, keys)
    kinds_of: dict[str, set[type]] = {}
    for sample in samples:
        for path, value in _flatten(sample).items():
            kinds_of.setdefault(path, set()).add(type(value))
            if value is None:
                assert path in NULLABLE[kind], f"{kind}.{path} is null"
            if value in ("", "0") and not isinstance(value, bool):
                assert path in CDROUTER_UNSET.get(kind, set()), f"{kind}.{path} is {value!r}"
    for path, types in kinds_of.items():
        if (kind, path) in NULL_IS_A_VALUE:
            continue
        assert not ({list, type(None)} <= types), f"{kind}.{path}: a list that is sometimes null"
    for sample in samples:
        for key, value in sample.items():
            if isinstance(value, dict) and key in {"options", "outcome"}:
                assert set(value) == set(samples[0][key]), (kind, key)


def data(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(f"{API}/{path}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_every_native_object_follows_the_one_rule(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    device = create(client, "devices", {"name": "dut", "attributes": {"ip": "10.0.0.1"}})
    bare_device = create(client, "devices", {"name": "bare"})
    config = create(client, "configs", {"name": "default", "testvars": {"who": "world"}})
    bare_config = create(client, "configs", {"name": "bare"})
    inherits = package(client, config_id=config["id"], device_id=device["id"])
    bare = package(client, "bare", command=["true"])
    external = package(
        client,
        "external",
        kind="external",
        command=[],
        positive_results=["done"],
        negative_results=["broken"],
    )
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    pending = launch(client, package_id=bare["id"], run_at=later)
    pending_opts = launch(
        client,
        package_id=inherits["id"],
        run_at=later,
        options={"testvars": [{"name": "who", "value": "you"}], "tags": ["t"]},
    )
    finished = wait_for(client, launch(client, package_id=inherits["id"])["id"])
    assert finished["status"] == "completed", finished
    started = launch(client, package_id=external["id"])
    assert client.post(f"{API}/jobs/{started['id']}/start/").status_code == 200
    outcome = {"status": "completedOk", "result": "done"}
    assert client.put(f"{API}/jobs/{started['id']}/outcome/", json=outcome).status_code == 200
    reported = data(client, f"jobs/{started['id']}/")
    added = client.post(f"{API}/jobs/{finished['id']}/results/", json={"step": "ok"})
    assert added.status_code == 200, added.text
    token = client.post(f"{API}/tokens/", json={"name": "ci", "scopes": ["jobs:read"]})
    assert token.status_code == 200, token.text
    user = create(client, "users", {"login": "viewer1", "password": "pw-123456789"})
    tenant = client.post(f"{API}/tenants/", json={"name": "acme"}).json()["data"]

    jobs = [data(client, f"jobs/{j['id']}/") for j in (pending, pending_opts)]
    check("job", [*jobs, finished, reported, *data(client, "jobs/", limit="none")], document)
    # The job's device and config are the ones it runs with, inherited or not, by id and name.
    for job in (finished, jobs[1]):
        assert (job["device_id"], job["device_name"]) == (device["id"], "dut")
        assert (job["config_id"], job["config_name"]) == (config["id"], "default")
    assert (jobs[0]["device_id"], jobs[0]["config_id"]) == ("0", "0")
    assert jobs[0]["outcome"] == {"status": None, "result": None}
    assert reported["outcome"] == outcome
    assert jobs[0]["options"]["skip_tests"] == []
    assert jobs[0]["options"]["testvars"] == []
    filtered = data(client, "jobs/", filter=f"config_id={config['id']}", limit="none")
    assert {j["id"] for j in filtered} == {finished["id"], pending_opts["id"]}

    check("run", data(client, "runs/", limit="none"), document)
    check("package", [inherits, bare, external, *data(client, "packages/")], document)
    check("device", [device, bare_device], document)
    check("config", [config, bare_config], document)
    check("user", [user, *data(client, "users/"), data(client, "users/me/")], document)
    created = token.json()["data"]
    assert created.pop("token")  # the secret: in the answer that creates it, and only there
    check("token", [created, *data(client, "tokens/")], document)
    check("customer", [tenant, *data(client, "tenants/")], document)
    check("worker", data(client, "workers/", all="true"), document)
    check(
        "job_event",
        [e for j in (pending, finished) for e in data(client, f"jobs/{j['id']}/events/")],
        document,
    )
    check("audit_event", data(client, "events/", limit="none"), document)
    check("result", data(client, f"jobs/{finished['id']}/results/"), document)
    check("log", [data(client, f"jobs/{j['id']}/log/") for j in (pending, finished)], document)


def test_a_deleted_config_leaves_its_jobs_without_its_id(client: TestClient) -> None:
    config = create(client, "configs", {"name": "gone"})
    job = wait_for(
        client,
        launch(client, package_id=package(client, command=["true"])["id"], config_id=config["id"])[
            "id"
        ],
    )
    assert job["config_id"] == config["id"]
    assert client.delete(f"{API}/configs/{config['id']}/").status_code == 204
    after = data(client, f"jobs/{job['id']}/")
    assert (after["config_id"], after["config_name"]) == ("0", "gone")


def test_webhooks_follow_the_one_rule(client: TestClient) -> None:
    """A webhook, enabled and disabled, and its deliveries (pending: nothing here allows the
    loopback, and example.com is not asked before a try)."""
    document = client.get("/openapi.json").json()
    bare = package(client, "bare", command=["true"])
    hook = create(client, "webhooks", {"url": "https://example.com/hooks"})
    assert hook.pop("secret")  # like a token's: in the answer that creates it only
    scoped = create(
        client,
        "webhooks",
        {"url": "https://example.com/b", "package_id": bare["id"], "description": "ci"},
    )
    scoped.pop("secret")
    off = client.patch(f"{API}/webhooks/{scoped['id']}/", json={"enabled": False})
    check("webhook", [hook, scoped, off.json()["data"], *data(client, "webhooks/")], document)
    ping = client.post(f"{API}/webhooks/{hook['id']}/test/").json()["data"]
    deliveries = data(client, f"webhooks/{hook['id']}/deliveries/")
    check("webhook_delivery", [ping, *deliveries], document)
