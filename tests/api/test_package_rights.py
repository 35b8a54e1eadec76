"""Who defines what runs, and what a launch may add to it (issue 16, D3), on both databases.

The probe: an admin defines `find DIR -name *.txt`; an operator launches it with
`extra_cli_args: -exec sh -c 'id > FILE' ;` and FILE gets written. Appended arguments are now
refused unless the package's `allowed_args` declares their form, on every way to launch; and
only system admins define what a package runs, unless the deployment lets customer admins.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.settings import Settings
from tests.api.helpers import TERMINAL, create, launch
from tests.conftest import AUTH

API = "/api/v1"
FUTURE = "9999-01-01T00:00:00Z"
PASSWORD = "long-enough-pw"
PRINT_EACH = ["printf", "[%s]\\n"]  # one bracketed line per argument: the argv, exactly


def basic(login: str) -> dict[str, str]:
    raw = base64.b64encode(f"{login}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def problem(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    message: str = response.json()["error"]
    for word in words:
        assert word in message, (word, message)
    return message


def user(client: TestClient, login: str, role: str, customer: str | None = None) -> dict[str, str]:
    """A user of `customer` (the system one by default); its Basic credentials."""
    headers = {} if customer is None else {"Customer-Id": customer}
    body = {"login": login, "password": PASSWORD, "role": role}
    response = client.post(f"{API}/users/", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return basic(login)


def customer(client: TestClient, name: str = "acme") -> str:
    response = client.post(f"{API}/tenants/", json={"name": name})
    assert response.status_code == 200, response.text
    tenant: str = response.json()["data"]["id"]
    return tenant


def total_jobs(client: TestClient, headers: dict[str, str] | None = None) -> int:
    response = client.get(f"{API}/jobs/", headers=headers or {})
    assert response.status_code == 200, response.text
    count: int = response.json()["links"]["total"]
    return count


def output(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> str:
    """What a job printed, once it ended; `headers` say who may read it (its customer's)."""
    deadline = time.monotonic() + 20
    while (done := client.get(f"{API}/jobs/{job_id}/", headers=headers or {}).json()["data"])[
        "status"
    ] not in TERMINAL:
        assert time.monotonic() < deadline, done
        time.sleep(0.02)
    log = client.get(f"{API}/jobs/{job_id}/log/", headers=headers or {}).json()["data"]
    assert done["status"] == "completed", (done, log)
    content: str = log["content"]
    return content


# The probe: appended arguments are code -----------------------------------------------------


@pytest.fixture
def probe(client: TestClient, tmp_path: Path) -> dict[str, Any]:
    """The probe's package (defined by the system admin) and an operator to launch it."""
    data = tmp_path / "files"
    data.mkdir()
    (data / "a.txt").write_text("a")
    (data / "sub").mkdir()
    (data / "sub" / "b.txt").write_text("b")
    package = create(
        client, "packages", {"name": "find", "command": ["find", str(data), "-name", "*.txt"]}
    )
    return {
        "package": package,
        "operator": user(client, "op", "operator"),
        "file": tmp_path / "pwned",
        "data": data,
    }


def test_the_probe_launch_is_refused_and_nothing_runs(
    client: TestClient, probe: dict[str, Any]
) -> None:
    operator, target = probe["operator"], probe["file"]
    launch_body = {
        "package_id": probe["package"]["id"],
        "options": {"extra_cli_args": f"-exec sh -c 'id > {target}' ;"},
    }
    response = client.post(f"{API}/jobs/", json=launch_body, headers=operator)
    problem(response, 400, "extra_cli_args", '"-exec" is not allowed', 'package "find"', "-testvar")
    # Every other way in is refused the same way.
    refusals = [
        ("/jobs/?bulk=launch", {"jobs": [launch_body]}),
        ("/jobs/?bulk=launch&all=true", {"fields": launch_body | {"package_id": None}}),
        ("/jobs/?process=interfaces", launch_body),
    ]
    for path, body in refusals:
        problem(client.post(API + path, json=body, headers=operator), 400, '"-exec"')
    pending = launch(client, package_id=probe["package"]["id"], run_at=FUTURE)
    edit = {"options": launch_body["options"]}
    response = client.patch(f"{API}/jobs/{pending['id']}/", json=edit, headers=operator)
    problem(response, 400, '"-exec" is not allowed')
    kept = client.get(f"{API}/jobs/{pending['id']}/").json()["data"]
    assert kept["options"]["extra_cli_args"] == ""
    assert total_jobs(client) == 1  # only the pending one, untouched
    # The plain package still runs, as defined.
    job = launch(client, package_id=probe["package"]["id"])
    found = sorted(output(client, job["id"]).splitlines())
    assert found == [str(probe["data"] / "a.txt"), str(probe["data"] / "sub" / "b.txt")]
    time.sleep(0.2)  # the embedded workers had time to run anything they were given
    assert not target.exists()


def test_allowed_forms_launch_with_the_expected_argv(
    client: TestClient, probe: dict[str, Any]
) -> None:
    allowed = ["-maxdepth {1,2}", "-print", "-newer *", "--label=*", "*"]
    package = create(
        client,
        "packages",
        {"name": "each", "command": [*PRINT_EACH, "{who}"], "allowed_args": allowed},
    )
    assert package["allowed_args"] == allowed
    operator = probe["operator"]
    text = "-maxdepth 2 -print '--label=a b -exec' -testvar 'who=x -exec y' c -newer 'd e'"
    body = {"package_id": package["id"], "options": {"extra_cli_args": text}}
    response = client.post(f"{API}/jobs/", json=body, headers=operator)
    assert response.status_code == 200, response.text
    assert output(client, response.json()["data"]["id"]) == (
        "[x -exec y]\n[-maxdepth]\n[2]\n[-print]\n[--label=a b -exec]\n[c]\n[-newer]\n[d e]\n"
    )
    # One argument outside the forms refuses the whole launch.
    for bad, named in [
        ("-maxdepth 3", "must be one of 1, 2"),
        ("-maxdepth -exec", "cannot start with '-'"),
        ("-newer", "needs a value after it"),
        ("--label=x -exec", '"-exec" is not allowed'),
        ("-- -exec", '"--" is not allowed'),
    ]:
        body = {"package_id": package["id"], "options": {"extra_cli_args": bad}}
        response = client.post(f"{API}/jobs/", json=body, headers=operator)
        problem(response, 400, named, '"-maxdepth {1,2}"')
    # The real find, with the forms its package allows.
    find = probe["package"]["id"]
    response = client.patch(f"{API}/packages/{find}/", json={"allowed_args": ["-maxdepth {1}"]})
    assert response.status_code == 200, response.text
    body = {"package_id": find, "options": {"extra_cli_args": "-maxdepth 1"}}
    job = client.post(f"{API}/jobs/", json=body, headers=operator).json()["data"]
    assert output(client, job["id"]) == f"{probe['data'] / 'a.txt'}\n"


def test_a_testvar_only_fills_its_placeholder(client: TestClient) -> None:
    package = create(client, "packages", {"name": "each", "command": [*PRINT_EACH, "{who}"]})
    flag_like = [
        {"name": "-exec", "value": "sh"},
        {"name": "who", "value": "a b 'c' \"d\" -exec e ;"},
    ]
    options = {"testvars": flag_like, "extra_cli_args": "-testvar '--delete=-rf /'"}
    job = launch(client, package_id=package["id"], options=options)
    assert output(client, job["id"]) == "[a b 'c' \"d\" -exec e ;]\n"


# allowed_args on packages ---------------------------------------------------------------------


def test_allowed_args_in_package_answers_and_edits(client: TestClient) -> None:
    package = create(client, "packages", {"name": "p", "command": ["true"]})
    assert package["allowed_args"] == []  # a list is never null (null and [] allow nothing)
    url = f"{API}/packages/{package['id']}/"
    for value in (["-v", "--level=*"], [], None):
        response = client.patch(url, json={"allowed_args": value})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["allowed_args"] == (value or [])
        assert client.get(url).json()["data"]["allowed_args"] == (value or [])
    listed = client.get(f"{API}/packages/").json()["data"]
    assert [p["allowed_args"] for p in listed] == [[]]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (["-exec;"], "a flag is"),
        (["--level -x"], "cannot start with '-'"),
        (["-testvar *"], "-testvar pairs are always allowed"),
        (["-v", "-v *"], "declared both alone and with a separate value"),
        (["-x"] * 101, "at most 100 entries"),
        (["--level  *"], "one space"),
    ],
)
def test_invalid_allowed_args_are_400_naming_the_field(
    client: TestClient, value: list[str], named: str
) -> None:
    response = client.post(
        f"{API}/packages/", json={"name": "p", "command": ["true"], "allowed_args": value}
    )
    problem(response, 400, "allowed_args", named)
    package = create(client, "packages", {"name": "kept", "command": ["true"]})
    url = f"{API}/packages/{package['id']}/"
    problem(client.patch(url, json={"allowed_args": value}), 400, named)
    assert client.get(url).json()["data"]["allowed_args"] == []


def test_allowed_args_of_the_wrong_type_are_400(client: TestClient) -> None:
    for value in ("-v", [1], {"-v": True}):
        body = {"name": "p", "command": ["true"], "allowed_args": value}
        problem(client.post(f"{API}/packages/", json=body), 400, "allowed_args")
    assert client.get(f"{API}/packages/").json()["links"]["total"] == 0


# Who defines what runs ------------------------------------------------------------------------


@pytest.fixture
def acme(client: TestClient) -> dict[str, Any]:
    """Customer 2 with its admin and operator, and a command and an external package the
    system admin defined for it."""
    tenant = customer(client)
    as_system = {"Customer-Id": tenant}
    command = {"name": "cmd", "command": [*PRINT_EACH, "x"], "allowed_args": ["-v"]}
    return {
        "id": tenant,
        "admin": user(client, "acme-admin", "admin", tenant),
        "operator": user(client, "acme-op", "operator", tenant),
        "as_system": as_system,
        "command": client.post(f"{API}/packages/", json=command, headers=as_system).json()["data"],
        "external": client.post(
            f"{API}/packages/", json={"name": "ext", "kind": "external"}, headers=as_system
        ).json()["data"],
    }


RUN_CHANGES = [  # what a customer admin may not set by default, on either package
    {"kind": "command", "command": ["id"]},
    {"command": ["id"]},
    {"env": {"LD_PRELOAD": "/tmp/x.so"}},
    {"allowed_args": ["*"]},
]


def test_a_customer_admin_defines_no_command_package_by_default(
    client: TestClient, acme: dict[str, Any]
) -> None:
    admin = acme["admin"]
    for body in (
        {"name": "mine", "command": ["id"]},
        {"name": "mine", "kind": "command", "command": ["id"]},
        {"name": "mine", "kind": "external", "command": ["id"]},
        {"name": "mine", "kind": "external", "env": {"A": "b"}},
        {"name": "mine", "kind": "external", "allowed_args": ["-v"]},
    ):
        response = client.post(f"{API}/packages/", json=body, headers=admin)
        problem(response, 403, "missing system admin", "JOBYARD_CUSTOMER_ADMINS_DEFINE_COMMANDS")
    # An external package, and one with empty run fields, are theirs to define.
    for body in (
        {"name": "theirs", "kind": "external", "note": "n"},
        {"name": "theirs-too", "kind": "external", "command": [], "env": {}, "allowed_args": []},
    ):
        response = client.post(f"{API}/packages/", json=body, headers=admin)
        assert response.status_code == 200, response.text


def test_a_customer_admin_cannot_change_what_a_package_runs(
    client: TestClient, acme: dict[str, Any]
) -> None:
    admin = acme["admin"]
    for name in ("command", "external"):
        url = f"{API}/packages/{acme[name]['id']}/"
        before = client.get(url, headers=admin).json()["data"]
        for change in RUN_CHANGES:
            response = client.patch(url, json=change, headers=admin)
            problem(response, 403, "missing system admin", list(change)[-1])
        after = client.get(url, headers=admin).json()["data"]
        assert after == before
        # The fields that do not decide what runs stay theirs, and so does a no-op.
        harmless = {"note": "theirs", "timeout": 30, "tags": ["t"], "description": "d"}
        same = {k: before[k] for k in ("kind", "command", "env", "allowed_args")}
        for body in (harmless, same):
            response = client.patch(url, json=body, headers=admin)
            assert response.status_code == 200, response.text
    problem(
        client.patch(
            f"{API}/packages/{acme['command']['id']}/", json={"kind": "external"}, headers=admin
        ),
        403,
        "kind",
    )


def test_the_system_admin_changes_what_a_customer_package_runs(
    client: TestClient, acme: dict[str, Any]
) -> None:
    as_system = acme["as_system"]
    url = f"{API}/packages/{acme['external']['id']}/"
    response = client.patch(
        url, json={"kind": "command", "command": [*PRINT_EACH, "y"]}, headers=as_system
    )
    assert response.status_code == 200, response.text
    for change in RUN_CHANGES[1:]:
        response = client.patch(url, json=change, headers=as_system)
        assert response.status_code == 200, response.text
    # A customer operator launches it within the forms the system admin allowed.
    body = {"package_id": acme["command"]["id"], "options": {"extra_cli_args": "-v"}}
    job = client.post(f"{API}/jobs/", json=body, headers=acme["operator"]).json()["data"]
    assert output(client, job["id"], acme["operator"]) == "[x]\n[-v]\n"
    body["options"] = {"extra_cli_args": "-v -exec"}
    problem(client.post(f"{API}/jobs/", json=body, headers=acme["operator"]), 400, '"-exec"')


@pytest.fixture
def permissive_client(settings: Settings) -> Iterator[TestClient]:
    """The app of a deployment that lets customer admins define what runs."""
    allowing = settings.with_overrides(customer_admins_define_commands=True)
    with TestClient(create_app(allowing), headers=AUTH) as test_client:
        yield test_client


def test_the_setting_lets_customer_admins_define_commands(
    permissive_client: TestClient,
) -> None:
    client = permissive_client
    tenant = customer(client)
    admin = user(client, "acme-admin", "admin", tenant)
    body = {"name": "mine", "command": [*PRINT_EACH, "{who}"], "allowed_args": ["-v"]}
    response = client.post(f"{API}/packages/", json=body, headers=admin)
    assert response.status_code == 200, response.text
    package = response.json()["data"]
    url = f"{API}/packages/{package['id']}/"
    for change in [*RUN_CHANGES[1:], {"kind": "external"}, {"kind": "command"}]:
        response = client.patch(url, json=change, headers=admin)
        assert response.status_code == 200, (change, response.text)
    # Launches stay within the package's forms: the setting is about defining, not launching.
    back = {"command": [*PRINT_EACH, "{who}"], "env": {}}
    response = client.patch(url, json=back, headers=admin)
    assert response.status_code == 200, response.text
    launch_body = {
        "package_id": package["id"],
        "options": {"extra_cli_args": "-testvar who=me '$(id)'"},
    }
    job = client.post(f"{API}/jobs/", json=launch_body, headers=admin).json()["data"]
    assert output(client, job["id"], admin) == "[me]\n[$(id)]\n"
    launch_body["options"] = {"extra_cli_args": "-exec id"}
    problem(client.post(f"{API}/jobs/", json=launch_body, headers=admin), 400, '"-exec"')
