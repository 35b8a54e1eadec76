"""`/api/v1/webhooks/` as admins use it: addresses the server may not call are refused (at
save time when known, at each try otherwise), invalid input is a clear 4xx, customers see
only their own webhooks, and only admins manage them."""

from __future__ import annotations

import base64
import time
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings
from jobyard.store import tables
from jobyard.store.db import Database
from tests.api.helpers import create, launch, package, wait_for
from tests.conftest import AUTH
from tests.webhooks.receiver import Receiver

API = "/api/v1"
PASSWORD = "long-enough-pw"


def refused(client: TestClient, body: dict[str, Any], status: int, says: str) -> None:
    answer = client.post(f"{API}/webhooks/", json=body)
    assert answer.status_code == status, (body, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"], (body, answer.json()["detail"])


REFUSED_URLS = (
    "http://127.0.0.1:9/hooks",
    "http://localhost/hooks",
    "http://app.localhost./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.1.2.3]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://240.0.0.1/",
)


def test_addresses_the_server_may_not_call_are_refused(client: TestClient) -> None:
    for url in REFUSED_URLS:
        answer = client.post(f"{API}/webhooks/", json={"url": url})
        assert answer.status_code == 422, (url, answer.text)
        problem = answer.json()
        assert "JOBYARD_WEBHOOK_ALLOW_NETWORKS" in problem["detail"], url
        assert "url" in str(problem.get("errors", problem)), url
    assert client.get(f"{API}/webhooks/").json()["links"]["total"] == 0


def test_a_loopback_receiver_is_refused_at_delivery_without_the_setting(
    hook_settings: Settings, receiver: Receiver
) -> None:
    """Allowed when it was saved, refused at each try once the server runs without the
    setting: the check is made again before every try."""
    with TestClient(create_app(hook_settings), headers=AUTH) as allowing:
        made = create(allowing, "webhooks", {"url": receiver.url})
    strict = hook_settings.model_copy(update={"webhook_allow_networks": ""})
    with TestClient(create_app(strict), headers=AUTH) as client:
        wait_for(client, launch(client, package_id=package(client, command=["true"])["id"])["id"])
        deadline = time.monotonic() + 20
        while True:
            log = client.get(f"{API}/webhooks/{made['id']}/deliveries/").json()["data"]
            if log and log[0]["status"] == "failed":
                break
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
    assert receiver.snapshot() == []
    errors = {a["error"] for a in log[0]["history"]}
    assert errors == {
        "refused: 127.0.0.1 is a loopback address: an admin allows such networks with"
        " JOBYARD_WEBHOOK_ALLOW_NETWORKS"
    }
    assert {a["status_code"] for a in log[0]["history"]} == {None}


def test_invalid_input_is_a_clear_4xx(hooks: TestClient) -> None:
    ok = "http://127.0.0.1:9/"
    refused(hooks, {"url": "ftp://example.com/"}, 422, "http:// or https://")
    refused(hooks, {"url": "http:///nohost"}, 422, "needs a host")
    refused(hooks, {"url": "https://user:pw@example.com/"}, 422, "credentials")
    refused(hooks, {"url": "https://example.com/#x"}, 422, "fragment")
    refused(hooks, {"url": "https://example.com:99999/"}, 422, "not a valid url")
    refused(hooks, {"url": "https://exa mple.com/"}, 422, "printable")
    refused(hooks, {"url": "https://example.com/" + "a" * 2000}, 400, "url")
    refused(hooks, {"url": 5}, 400, "url")
    refused(hooks, {}, 400, "url is required")
    refused(hooks, {"url": ok, "events": ["job.exploded"]}, 400, "unknown event")
    refused(hooks, {"url": ok, "events": ["ping"]}, 400, "unknown event")
    refused(hooks, {"url": ok, "events": []}, 400, "at least one event")
    refused(hooks, {"url": ok, "secret": "short"}, 400, "secret")
    refused(hooks, {"url": ok, "package_id": "x1"}, 400, "package_id")
    refused(hooks, {"url": ok, "package_id": "999"}, 404, "no such package")
    refused(hooks, {"url": ok, "colour": "red"}, 400, "colour")
    made = create(hooks, "webhooks", {"url": ok, "secret": "a-secret-of-my-own-choosing"})
    assert made["secret"] == "a-secret-of-my-own-choosing"
    assert made["secret_hint"] == "…sing"
    edit = hooks.patch(f"{API}/webhooks/{made['id']}/", json={"url": "gopher://x/"})
    assert edit.status_code == 422
    for path in (
        "webhooks/abc/",
        "webhooks/999/",
        f"webhooks/{made['id']}/deliveries/999/redeliver/",
    ):
        method = hooks.post if path.endswith("redeliver/") else hooks.get
        assert method(f"{API}/{path}").status_code == 404, path


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{PASSWORD}".encode()).decode()}


def test_customers_see_their_own_and_only_admins_manage(hooks: TestClient) -> None:
    acme = create(hooks, "tenants", {"name": "acme"})["id"]
    as_acme = {"Customer-Id": acme}
    theirs = hooks.post(
        f"{API}/webhooks/", json={"url": "http://127.0.0.1:9/"}, headers=as_acme
    ).json()["data"]
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "deliveries/"),
        ("POST", "test/"),
    ):
        body = {"enabled": False} if method == "PATCH" else None
        answer = hooks.request(method, f"{API}/webhooks/{theirs['id']}/{path}", json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert hooks.get(f"{API}/webhooks/").json()["links"]["total"] == 0
    assert hooks.get(f"{API}/webhooks/", headers=as_acme).json()["links"]["total"] == 1

    for role in ("viewer", "operator", "admin"):
        user = {"login": f"acme-{role}", "password": PASSWORD, "role": role}
        assert hooks.post(f"{API}/users/", json=user, headers=as_acme).status_code == 200
    for role in ("viewer", "operator"):
        who = basic(f"acme-{role}")
        listed = hooks.get(f"{API}/webhooks/", headers=who)
        assert listed.status_code == 403, listed.text
        assert "admin" in listed.json()["detail"]
        made = hooks.post(f"{API}/webhooks/", json={"url": "http://127.0.0.1:9/"}, headers=who)
        assert made.status_code == 403
    admin = basic("acme-admin")
    assert hooks.get(f"{API}/webhooks/", headers=admin).json()["links"]["total"] == 1
    edited = hooks.patch(
        f"{API}/webhooks/{theirs['id']}/", json={"enabled": False}, headers=admin
    ).json()["data"]
    assert (edited["enabled"], edited["disabled_reason"]) == (False, "disabled by acme-admin")
    assert "secret" not in edited
    assert hooks.delete(f"{API}/webhooks/{theirs['id']}/", headers=admin).status_code == 204
    actions = [
        (e["action"], e["detail"])
        for e in hooks.get(f"{API}/events/?filter=object_type=webhook", headers=as_acme).json()[
            "data"
        ]
    ]
    assert [a for a, _ in actions] == ["webhook.create", "webhook.edit", "webhook.delete"]
    assert actions[0][1]["secret"] == "changed"  # that it was set, never what it is
    assert theirs["secret"] not in str(actions)


def test_a_package_with_a_webhook_cannot_be_deleted(hooks: TestClient) -> None:
    hello = package(hooks, command=["true"])
    made = create(hooks, "webhooks", {"url": "http://127.0.0.1:9/", "package_id": hello["id"]})
    in_use = hooks.delete(f"{API}/packages/{hello['id']}/")
    assert in_use.status_code == 409
    assert "webhook" in in_use.json()["detail"]
    assert hooks.delete(f"{API}/webhooks/{made['id']}/").status_code == 204
    assert hooks.delete(f"{API}/packages/{hello['id']}/").status_code == 204


def test_secrets_are_sealed_under_the_servers_key(hook_settings: Settings) -> None:
    """The database holds no secret in the clear; a server with another key cannot read the
    secrets sealed under the old one, and says so in the delivery log."""
    with TestClient(create_app(hook_settings), headers=AUTH) as client:
        made = create(client, "webhooks", {"url": "http://127.0.0.1:9/"})
    db = Database(hook_settings.database_url)
    with db.read() as conn:
        stored = conn.execute(sa.select(tables.webhooks.c.secret)).scalar_one()
    db.dispose()
    assert made["secret"] not in stored
    assert stored.startswith("v1:")

    rekeyed = hook_settings.model_copy(update={"secret_key": "another-key-for-the-whole-server"})
    with TestClient(create_app(rekeyed), headers=AUTH) as client:
        assert client.post(f"{API}/webhooks/{made['id']}/test/").status_code == 200
        deadline = time.monotonic() + 20
        while True:
            log = client.get(f"{API}/webhooks/{made['id']}/deliveries/").json()["data"]
            if log[0]["history"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "cannot be opened with this server's key" in log[0]["history"][0]["error"]
