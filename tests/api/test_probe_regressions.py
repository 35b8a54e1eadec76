"""Issue 16, D5/D6/D8: every input the probe answered with a 500 is a 4xx in the error shape
of its surface, on a connection that stays open; a stored value never breaks a later read; a
job's token reads its own job and nothing else; a system admin acting for a customer is
still themself; a bulk delete says which ids it did not find."""

from __future__ import annotations

import http.client
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from jobyard.settings import Settings
from jobyard.store.db import normalise_url
from tests.api.helpers import TERMINAL, create, launch, package, wait_for
from tests.api.test_bad_input import count, each, problem
from tests.conftest import ADMIN_TOKEN

API = "/api/v1"
JOBS = f"{API}/jobs/"
FUTURE = "9999-01-01T00:00:00Z"
JSON = {"Content-Type": "application/json"}
TOO_BIG = "9" * 30  # past 64 bits
SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() says no
FULLWIDTH_ONE = "%EF%BC%91"  # "\uff11": int() reads it as 1


def fill(template: str, *values: str) -> str:
    """`template` with each `@` replaced by the next value (JSON text is full of braces)."""
    for value in values:
        template = template.replace("@", value, 1)
    return template


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text of `depth` objects, one inside the other."""
    return '{"a":' * depth + leaf + "}" * depth


def answering(client: TestClient) -> TestClient:
    """The same app, answering 500s instead of raising them."""
    return TestClient(client.app, headers=dict(client.headers), raise_server_exceptions=False)


@pytest.fixture
def pkg(client: TestClient) -> dict[str, Any]:
    return package(client, "ok", command=["echo", "hi"])


# The duplicate login ----------------------------------------------------------------------


def test_a_login_taken_twice_is_409_and_no_hash_reaches_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"login": "twice", "password": "a-long-password", "role": "viewer"}
    assert client.post(f"{API}/users/", json=body).status_code == 200
    with caplog.at_level(logging.DEBUG):
        response = client.post(f"{API}/users/", json=body)
    problem(response, 409, "twice", "already exists")
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "argon2" not in logged
    assert "a-long-password" not in logged
    assert (
        client.get(f"{API}/users/", params={"filter": "login=twice"}).json()["links"]["total"] == 1
    )


# Explicit nulls ---------------------------------------------------------------------------

CATALOG_DEFAULTS: list[tuple[str, dict[str, Any], str, Any]] = [
    # (resource, a valid body, the field given as null, what it reads back as)
    ("packages", {"command": ["true"]}, "description", ""),
    ("packages", {"command": ["true"]}, "tags", []),
    ("packages", {"command": ["true"]}, "kind", "command"),
    ("packages", {"command": ["true"]}, "env", {}),
    ("packages", {"command": ["true"]}, "note", ""),
    ("packages", {"command": ["true"]}, "positive_results", []),
    ("packages", {"command": ["true"]}, "negative_results", None),
    ("packages", {"command": ["true"]}, "max_attempts", 1),
    ("packages", {"command": ["true"]}, "retry_delay", 0.0),
    ("packages", {"command": ["true"]}, "timeout", 0),
    ("packages", {"command": ["true"]}, "concurrency", 0),
    ("packages", {"command": ["true"]}, "config_id", "0"),
    ("packages", {"kind": "external"}, "command", []),
    ("devices", {}, "description", ""),
    ("devices", {}, "attributes", {}),
    ("configs", {}, "description", ""),
    ("configs", {}, "testvars", {}),
    ("configs", {}, "interfaces", []),
]


@pytest.mark.parametrize(("resource", "body", "field", "default"), CATALOG_DEFAULTS)
def test_an_explicit_null_is_the_fields_default_on_create_and_edit(
    client: TestClient, resource: str, body: dict[str, Any], field: str, default: Any
) -> None:
    created = create(client, resource, {"name": "made", **body, field: None})
    assert created[field] == default
    path = f"{API}/{resource}/{created['id']}/"
    edited = client.patch(path, json={field: None})
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"][field] == default


@pytest.mark.parametrize("resource", ["packages", "devices", "configs"])
def test_a_null_name_is_400_naming_it(client: TestClient, resource: str) -> None:
    body = {"name": "named", "command": ["true"]} if resource == "packages" else {"name": "named"}
    made = create(client, resource, body)
    problem(client.patch(f"{API}/{resource}/{made['id']}/", json={"name": None}), 400, "name")
    problem(client.post(f"{API}/{resource}/", json=body | {"name": None}), 400, "name")
    assert client.get(f"{API}/{resource}/{made['id']}/").json()["data"]["name"] == "named"


def test_nulls_in_job_user_and_token_bodies(client: TestClient, pkg: dict[str, Any]) -> None:
    options = ("tags", "skip_tests", "begin_at", "end_at", "testvars", "extra_cli_args")
    job = launch(
        client,
        package_id=pkg["id"],
        device_id=None,
        config_id=None,
        context=None,
        priority=None,
        run_at=FUTURE,
        options=dict.fromkeys(options),
    )
    assert job["context"] == {}
    assert job["options"]["tags"] == []
    user = create(client, "users", {"login": "nully", "password": None, "role": None})
    assert user["role"] == "viewer"
    token = create(
        client,
        "tokens",
        {
            "name": "t",
            "scopes": ["jobs:read"],
            "expires": None,
            "expires_in": None,
            "user_id": None,
        },
    )
    assert token["user_id"] == "1"
    problem(
        client.post(f"{API}/tokens/", json={"name": None, "scopes": ["jobs:read"]}), 400, "name"
    )
    problem(client.post(f"{API}/users/", json={"login": None}), 400, "login")


# Numbers: ASCII digits in range -----------------------------------------------------------


def _native_numbers(job_id: str) -> list[tuple[str, str, dict[str, str], int, str]]:
    """(method, path, headers, status, a word the message names) for the native API."""
    log = f"{JOBS}{job_id}/log/"
    stream = {"Accept": "text/event-stream"}
    return [
        ("GET", f"{JOBS}{SUPERSCRIPT_TWO}/", {}, 404, "no such Job"),
        ("GET", f"{JOBS}{FULLWIDTH_ONE}/", {}, 404, "no such Job"),
        ("GET", f"{JOBS}{TOO_BIG}/", {}, 404, "no such Job"),
        ("GET", f"{API}/users/{FULLWIDTH_ONE}/", {}, 404, "no such user"),
        ("GET", f"{API}/users/{SUPERSCRIPT_TWO}/", {}, 404, "no such user"),
        ("GET", f"{API}/packages/{SUPERSCRIPT_TWO}/", {}, 404, "no such package"),
        ("GET", f"{API}/runs/{TOO_BIG}/", {}, 404, ""),
        ("GET", f"{log}?offset={SUPERSCRIPT_TWO}", {}, 400, "offset"),
        ("GET", f"{log}?offset={FULLWIDTH_ONE}", {}, 400, "offset"),
        ("GET", f"{log}?offset={TOO_BIG}", {}, 400, "offset"),
        ("GET", f"{log}?attempt={SUPERSCRIPT_TWO}", {}, 400, "attempt"),
        ("GET", f"{log}?attempt={TOO_BIG}", {}, 400, "attempt"),
        ("GET", f"{log}?offset={TOO_BIG}", stream, 400, "offset"),
        ("GET", log, stream | {"Last-Event-ID": TOO_BIG}, 400, "Last-Event-ID"),
        ("GET", JOBS, {"Customer-Id": TOO_BIG}, 400, "Customer-Id"),
        ("GET", f"{JOBS}?page={TOO_BIG}", {}, 400, "page"),
        ("GET", f"{JOBS}?page={SUPERSCRIPT_TWO}", {}, 400, "page"),
        ("GET", f"{JOBS}?limit={TOO_BIG}", {}, 400, "limit"),
        ("GET", f"{JOBS}?limit={FULLWIDTH_ONE}", {}, 400, "limit"),
    ]


def test_non_ascii_digits_and_huge_integers_are_4xx(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    job = wait_for(client, launch(client, package_id=pkg["id"])["id"])
    calm = answering(client)

    def check(method: str, path: str, headers: dict[str, str], status: int, word: str) -> None:
        problem(calm.request(method, path, headers=headers), status, word)

    each(_native_numbers(job["id"]), check)
    # Headers as bytes: superscript two and fullwidth one, as a raw client sends them.
    for raw in ("²".encode("latin-1"), "²".encode(), "\uff11".encode()):
        problem(calm.get(JOBS, headers={"Customer-Id": raw}), 400, "Customer-Id")  # type: ignore[dict-item]
        stream = {"Accept": "text/event-stream", "Last-Event-ID": raw}
        problem(calm.get(f"{JOBS}{job['id']}/log/", headers=stream), 400, "Last-Event-ID")  # type: ignore[arg-type]

    def reference(value: Any) -> None:
        problem(calm.post(JOBS, json={"package_id": value}), 400, "package_id")

    each(["²", "\uff11", TOO_BIG, int(TOO_BIG), 2**63], reference)
    assert count(client) == 1


def test_dialects_read_ids_and_numbers_the_same_way(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    calm = answering(client)
    for path in (f"/node/api/jobs/{SUPERSCRIPT_TWO}", f"/node/api/jobs/{FULLWIDTH_ONE}"):
        answer = calm.get(path)
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "ResourceNotFound"
    for path in (f"/v1/job_runs/{SUPERSCRIPT_TWO}.json", f"/v1/job_runs/{FULLWIDTH_ONE}.json"):
        answer = calm.get(path)
        assert answer.status_code == 404, answer.text
        assert "error" in answer.json()
    customer = {"Customer-Id": "1"}
    for path in (f"/v1/jobs/{SUPERSCRIPT_TWO}", f"/v1/jobs/{FULLWIDTH_ONE}", f"/v1/jobs/{TOO_BIG}"):
        answer = calm.get(path, headers=customer)
        assert answer.status_code == 404, answer.text
        assert answer.json()["status"] == 404
    for query in ({"pageNumber": "²"}, {"pageSize": TOO_BIG}, {"typeId": "\uff11"}):
        answer = calm.get("/v1/jobs", params=query, headers=customer)
        assert answer.status_code == 400, (query, answer.text)
    answer = calm.get("/v1/jobs", headers={"Customer-Id": "²".encode("latin-1")})  # type: ignore[dict-item]
    assert answer.status_code == 400, answer.text


# JSON depth at the door -------------------------------------------------------------------


def test_json_nested_deeper_than_the_limit_is_400_on_every_route_that_stores_it(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)
    calm = answering(client)
    deep = nested(1000)
    bodies = [
        (JOBS, fill('{"package_id": "@", "context": @}', pkg["id"], deep)),
        (JOBS, fill('{"package_id": "@", "context": {"step": @}}', pkg["id"], nested(500))),
        (
            f"{JOBS}?bulk=launch",
            fill('{"jobs": [{"package_id": "@", "context": @}]}', pkg["id"], deep),
        ),
        (f"{JOBS}{job['id']}/results/", deep),
        (f"{API}/devices/", fill('{"name": "d", "attributes": @}', deep)),
        (f"{API}/configs/", fill('{"name": "c", "testvars": @}', deep)),
        (f"{API}/packages/", fill('{"name": "p", "command": ["true"], "env": @}', deep)),
        (f"{API}/packages/", fill('{"name": "p", "command": ["true"], "tags": [@]}', deep)),
    ]

    def check(path: str, body: str) -> None:
        problem(calm.post(path, content=body, headers=JSON), 400, "deeper than 64")

    each(bodies, check)
    saymon = calm.patch(f"/node/api/jobs/{job['id']}/results", content=deep, headers=JSON)
    assert saymon.status_code == 400, saymon.text
    assert saymon.json()["code"] == "InvalidContent"
    bigchange = calm.post(
        "/v1/jobs",
        content=fill('{"typeId": @, "description": @}', pkg["id"], deep),
        headers=JSON | {"Customer-Id": "1"},
    )
    assert bigchange.status_code == 400, bigchange.text
    assert count(client) == 1
    assert client.get(f"{JOBS}{job['id']}/results/").json()["data"] == []


def test_json_at_the_limit_is_stored_and_read_back(client: TestClient, pkg: dict[str, Any]) -> None:
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)
    body = nested(64, '"deepest [{\\"quoted\\"}]"')
    added = client.post(f"{JOBS}{job['id']}/results/", content=body, headers=JSON)
    assert added.status_code == 200, added.text
    payload = client.get(f"{JOBS}{job['id']}/results/").json()["data"][0]["payload"]
    for _ in range(63):
        payload = payload["a"]
    assert payload == {"a": 'deepest [{"quoted"}]'}


# Stored values never break a later read -------------------------------------------------


def _store_context(settings: Settings, job_id: str, context_text: str) -> None:
    """Write a job's context straight into the database, as a release without the depth
    limit could have stored it."""
    engine = sa.create_engine(normalise_url(settings.database_url))
    try:
        with engine.begin() as conn:
            value = "CAST(:c AS JSONB)" if engine.dialect.name == "postgresql" else ":c"
            conn.execute(
                sa.text(f"UPDATE jobs SET context = {value} WHERE id = :id"),
                {"c": context_text, "id": int(job_id)},
            )
    finally:
        engine.dispose()


READS = [
    ("/v1/job_runs.json", {}),
    ("/v1/job_runs.xml", {}),
    ("/v1/job_runs.json?step_id=5", {}),
    (JOBS, {}),
    (JOBS, {"Accept": "application/xml"}),
]


@pytest.mark.parametrize(
    "context",
    [
        fill('{"step": @}', nested(500)),
        fill('{"step": @, "other": @}', nested(900), nested(900)),
        '{"step": "a plain string"}',
        '{"step": [1, {"id": 2}]}',
        '{"step": 12}',
        '{"step": {"id": "abc", "request": "not an object", "name": {"x": [1, 2]}}}',
        '{"step": {"id": 1.5}}',
        fill('{"step": {"id": @}}', TOO_BIG),
    ],
    ids=[
        "step-500-deep",
        "900-deep",
        "string",
        "list",
        "number",
        "odd-members",
        "float-id",
        "huge-id",
    ],
)
def test_a_stored_value_never_breaks_a_later_read(
    client: TestClient, settings: Settings, pkg: dict[str, Any], context: str
) -> None:
    job = wait_for(client, launch(client, package_id=pkg["id"])["id"])
    _store_context(settings, job["id"], context)
    calm = answering(client)
    for path, headers in [
        *READS,
        (f"{JOBS}{job['id']}/", {}),
        (f"{JOBS}{job['id']}/", {"Accept": "application/xml"}),
        (f"/node/api/jobs/{job['id']}", {}),
        (f"/v1/jobs/{job['id']}", {"Customer-Id": "1"}),
    ]:
        answer = calm.get(path, headers=headers)
        assert answer.status_code in {200, 404}, (path, answer.status_code, answer.text[:300])
        assert answer.status_code == 200 or "step_id" in path, (path, answer.text[:300])
    shown = calm.get("/v1/job_runs.json").json()[0]["step"]
    assert shown is None or isinstance(shown, dict)


def test_the_step_of_a_job_run_shows_only_an_object(
    client: TestClient, settings: Settings, pkg: dict[str, Any]
) -> None:
    """`step` is the context's step object in BMC's key order, null for anything else."""
    job = wait_for(client, launch(client, package_id=pkg["id"])["id"])
    cases = [
        ('"text"', None),
        ("[1, 2]", None),
        ("7", None),
        (
            '{"z": 1, "name": "n", "request": "r"}',
            {"aasm_state": None, "id": None, "name": "n", "request": None, "z": 1},
        ),
    ]
    for step, shown in cases:
        _store_context(settings, job["id"], fill('{"step": @}', step))
        runs = client.get("/v1/job_runs.json").json()
        assert runs[0]["step"] == shown, step


# D6: a job's token reads its own job, nothing else -----------------------------------------

WAIT_FOR_FLAG = """
import os, pathlib, sys, time
pathlib.Path(sys.argv[1]).write_text(os.environ['JOBYARD_TOKEN'])
flag = pathlib.Path(sys.argv[2])
deadline = time.time() + 60
while not flag.exists() and time.time() < deadline:
    time.sleep(0.05)
"""


@pytest.fixture
def job_token(client: TestClient, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(the token of a running job, that job, another job's id)."""
    other = launch(
        client, package_id=package(client, "other", command=["true"])["id"], run_at=FUTURE
    )
    seen, flag = tmp_path / "token", tmp_path / "done"
    command = [sys.executable, "-c", WAIT_FOR_FLAG, str(seen), str(flag)]
    job = launch(client, package_id=package(client, "self", command=command)["id"])
    deadline = time.monotonic() + 20
    while not (seen.exists() and seen.read_text()):
        assert time.monotonic() < deadline, "the job wrote no token"
        time.sleep(0.05)
    try:
        yield seen.read_text(), job, other["id"]
    finally:
        flag.write_text("done")
        wait_for(client, job["id"], TERMINAL)


PATH_PARAMETERS = (
    "job_id",
    "schedule_id",
    "object_id",
    "user_id",
    "token_id",
    "run_id",
    "ident",
    "obj_id",
    "op_id",
)
OPEN_ROUTES = {"/authenticate", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"}


def test_a_job_token_is_refused_everywhere_but_its_own_job(
    client: TestClient, job_token: tuple[str, dict[str, Any], str]
) -> None:
    secret, job, other = job_token
    as_job = TestClient(client.app, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {secret}", "Customer-Id": "1"}
    mine = f"{JOBS}{job['id']}/"
    for path in (mine, f"{mine}log/", f"{mine}events/", f"{mine}results/"):
        assert as_job.get(path, headers=headers).status_code == 200, path
    added = as_job.post(f"{mine}results/", json={"step": "ok"}, headers=headers)
    assert added.status_code == 200, added.text
    assert as_job.get(f"/node/api/jobs/{job['id']}", headers=headers).status_code == 200
    assert as_job.get(f"/v1/jobs/{job['id']}", headers=headers).status_code == 200

    named = [
        ("GET", f"{API}/users/me/"),
        ("GET", f"{API}/users/{job['user_id']}/"),
        ("GET", f"{API}/system/hostname/"),
        ("GET", f"{API}/system/version/"),
        ("GET", f"{API}/workers/"),
        ("GET", f"{API}/tenants/"),
        ("GET", f"{API}/packages/"),
        ("GET", f"{API}/packages/{job['package_id']}/"),
        ("GET", f"{JOBS}{other}/"),
        ("GET", "/v1/job_runs.json"),
    ]
    # Every other route of every surface, each path parameter naming the other job.
    swept = [
        (method, route.path.replace("{rest:path}", "x").replace("{fmt}", "json"))
        for route in client.app.routes
        if isinstance(route, APIRoute) and route.path not in OPEN_ROUTES
        for method in sorted(route.methods - {"HEAD"})
    ]
    problems = []
    for method, path in named + swept:
        filled = path
        for name in PATH_PARAMETERS:
            filled = filled.replace("{" + name + "}", other)
        answer = as_job.request(method, filled, headers=headers)
        if answer.status_code not in {403, 404, 405}:
            problems.append(f"{method} {filled}: {answer.status_code} {answer.text[:120]}")
    assert not problems, "\n".join(problems)


# D8: the system admin acting for a customer; bulk deletes -----------------------------------


def test_the_system_admin_acting_for_a_customer_is_still_themself(client: TestClient) -> None:
    acme = client.post(f"{API}/tenants/", json={"name": "acme"}).json()["data"]["id"]
    for_acme = {"Customer-Id": acme}
    me = client.get(f"{API}/users/me/", headers=for_acme)
    assert me.status_code == 200, me.text
    assert (me.json()["data"]["id"], me.json()["data"]["customer_id"]) == ("1", "1")
    bare = TestClient(client.app)
    for scopes, may_act_for_acme in ((["admin"], 200), (["jobs:read"], 403)):
        made = client.post(
            f"{API}/tokens/", json={"name": "mine", "scopes": scopes}, headers=for_acme
        )
        assert made.status_code == 200, made.text
        token = made.json()["data"]
        assert token["user_id"] == "1"
        # The admin's own token: it acts in their home tenant, and for acme only when told
        # so and only with the admin scope, as any token of theirs.
        own = {"Authorization": f"Bearer {token['token']}"}
        assert bare.get(f"{API}/users/me/", headers=own).json()["data"]["id"] == "1"
        assert bare.get(JOBS, headers=own | for_acme).status_code == may_act_for_acme
    listed = client.get(f"{API}/tokens/", params={"filter": "name=mine"}).json()["links"]
    assert listed["total"] == 2  # listed with the admin's tenant's tokens


def test_a_bulk_delete_names_the_ids_it_did_not_find_and_deletes_nothing(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    acme = client.post(f"{API}/tenants/", json={"name": "acme"}).json()["data"]["id"]
    for_acme = {"Customer-Id": acme}
    acme_pkg = client.post(
        f"{API}/packages/", json={"name": "a", "command": ["true"]}, headers=for_acme
    ).json()["data"]
    foreign = client.post(
        JOBS, json={"package_id": acme_pkg["id"], "run_at": FUTURE}, headers=for_acme
    ).json()["data"]["id"]
    mine = [launch(client, package_id=pkg["id"], run_at=FUTURE)["id"] for _ in range(2)]

    for wanted in ([mine[0], "999999"], [foreign], [mine[1], foreign, "0"]):
        answer = client.post(
            JOBS, params={"bulk": "delete"}, json={"jobs": [{"id": i} for i in wanted]}
        )
        problem(answer, 404, "no such Job", "nothing was deleted")
        missing = [i for i in wanted if i not in mine]
        assert answer.json()["not_found"] == missing
        assert count(client) == 2
    assert client.get(f"{JOBS}{foreign}/", headers=for_acme).status_code == 200
    single = client.delete(f"{JOBS}999999/")
    problem(single, 404, "no such Job")
    deleted = client.post(JOBS, params={"bulk": "delete"}, json={"jobs": [{"id": i} for i in mine]})
    assert deleted.status_code == 204, deleted.text
    assert count(client) == 0


# The connection stays open ----------------------------------------------------------------


def test_each_refused_input_keeps_the_connection_open(live_server: Any) -> None:
    """A 500 made the server drop the keep-alive connection; a 4xx does not. One connection
    carries every refused request and then a good one."""
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def send(method: str, path: str, body: str | None = None, **headers: str) -> int:
        merged = auth | (JSON if body is not None else {}) | headers
        conn.request(method, path, body=body, headers=merged)
        answer = conn.getresponse()
        answer.read()
        return answer.status

    try:
        assert send("POST", f"{API}/packages/", '{"name": "p", "command": ["true"]}') == 200
        assert send("POST", JOBS, fill('{"package_id": "1", "run_at": "@"}', FUTURE)) == 200
        body = '{"login": "twice", "password": "a-long-password"}'
        assert send("POST", f"{API}/users/", body) == 200
        refused = [
            ("POST", f"{API}/users/", body),
            ("PATCH", f"{API}/packages/1/", '{"name": null}'),
            ("GET", f"{JOBS}{SUPERSCRIPT_TWO}/", None),
            ("GET", f"{JOBS}1/log/?offset={TOO_BIG}", None),
            ("GET", f"{JOBS}1/log/?attempt=%C2%B2", None),
            ("POST", JOBS, '{"package_id": "\\u00b2"}'),
            ("POST", f"{JOBS}1/results/", nested(1000)),
            ("POST", JOBS, fill('{"package_id": "1", "context": @}', nested(1000))),
        ]
        statuses = [send(method, path, content) for method, path, content in refused]
        statuses.append(send("GET", JOBS, None, **{"Customer-Id": TOO_BIG}))
        assert all(400 <= s < 500 for s in statuses), statuses
        assert statuses[:2] == [409, 400]
        assert send("POST", f"{API}/devices/", '{"name": "d", "description": null}') == 200
        assert send("GET", f"{API}/system/version/") == 200  # the same connection still serves
    finally:
        conn.close()
