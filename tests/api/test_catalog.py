"""Packages, devices and configs in the native API: create, list, get, edit, delete, the
conflicts between them and jobs, and how their values reach a job's real argv.

What a job ran is checked through its output: commands are `echo` or `printf`, never a shell
that could blur where one argument ends and the next begins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.api.helpers import create, launch, package, wait_for

FUTURE = "9999-01-01T00:00:00Z"
API = "/api/v1"
PRINT_EACH = ["printf", "[%s]\\n"]  # one bracketed line per argument


def conflict(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    message = response.json()["error"]
    for word in words:
        assert word in message, (word, message)


def total(client: TestClient, resource: str) -> int:
    response = client.get(f"{API}/{resource}/")
    assert response.status_code == 200, response.text
    count: int = response.json()["links"]["total"]
    return count


def patch(client: TestClient, resource: str, object_id: str, body: dict[str, Any]) -> Any:
    response = client.patch(f"{API}/{resource}/{object_id}/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def get(client: TestClient, resource: str, object_id: str) -> Any:
    response = client.get(f"{API}/{resource}/{object_id}/")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def stamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


def output(client: TestClient, **launch_body: Any) -> str:
    """Launch a job, wait for it, and return its standard output."""
    job = launch(client, **launch_body)
    done = wait_for(client, job["id"])
    log = client.get(f"{API}/jobs/{job['id']}/log/").json()["data"]
    assert done["status"] == "completed", (done, log)
    content: str = log["content"]
    return content


# Create, list, get, edit, delete ----------------------------------------------------------


def test_package_lifecycle(client: TestClient) -> None:
    config = create(client, "configs", {"name": "cfg"})
    device = create(client, "devices", {"name": "dut"})
    body = {
        "name": "suite",
        "description": "the nightly suite",
        "command": ["echo", "{who}"],
        "env": {"MODE": "fast"},
        "timeout": 60,
        "max_attempts": 3,
        "retry_delay": 1.5,
        "concurrency": 2,
        "config_id": config["id"],
        "device_id": device["id"],
        "positive_results": ["ok"],
        "negative_results": ["bad"],
        "tags": ["nightly"],
        "note": "keep",
    }
    created = create(client, "packages", body)

    assert created["id"].isdigit()
    for key, value in body.items():
        assert created[key] == value, key
    assert created["kind"] == "command"
    stamp(created["created"])
    assert get(client, "packages", created["id"]) == created
    listed = client.get(f"{API}/packages/").json()
    assert listed["data"] == [created]
    assert listed["links"]["total"] == 1

    edited = patch(client, "packages", created["id"], {"description": "changed"})

    assert edited["description"] == "changed"
    for key, value in body.items():
        if key != "description":
            assert edited[key] == value, key
    assert edited["created"] == created["created"]
    assert stamp(edited["updated"]) >= stamp(created["updated"])
    assert get(client, "packages", created["id"]) == edited

    renamed = patch(client, "packages", created["id"], {"name": "renamed", "tags": []})
    assert renamed["name"] == "renamed"
    assert renamed["tags"] == []
    assert renamed["command"] == ["echo", "{who}"]

    response = client.delete(f"{API}/packages/{created['id']}/")
    assert response.status_code in {200, 204}
    assert client.get(f"{API}/packages/{created['id']}/").status_code == 404
    assert client.get(f"{API}/packages/").json()["data"] == []
    assert client.delete(f"{API}/packages/{created['id']}/").status_code == 404


def test_device_lifecycle(client: TestClient) -> None:
    body = {"name": "router", "description": "lab", "attributes": {"address": "10.0.0.1"}}
    created = create(client, "devices", body)

    for key, value in body.items():
        assert created[key] == value, key
    assert get(client, "devices", created["id"]) == created
    assert client.get(f"{API}/devices/").json()["data"] == [created]

    edited = patch(client, "devices", created["id"], {"attributes": {"address": "10.0.0.2"}})
    assert edited["attributes"] == {"address": "10.0.0.2"}
    assert edited["name"] == "router"
    assert edited["description"] == "lab"
    edited = patch(client, "devices", created["id"], {"description": "bench"})
    assert edited["attributes"] == {"address": "10.0.0.2"}
    assert get(client, "devices", created["id"]) == edited

    assert client.delete(f"{API}/devices/{created['id']}/").status_code in {200, 204}
    assert client.get(f"{API}/devices/{created['id']}/").status_code == 404
    assert total(client, "devices") == 0


def test_config_lifecycle(client: TestClient) -> None:
    body = {
        "name": "lab",
        "description": "two ports",
        "testvars": {"wan": "eth1", "lan": "eth2"},
        "interfaces": [
            {"name": "wan", "value": "{wan}", "is_wireless": False, "is_ics": False},
            {"name": "lan", "value": "{lan}", "is_wireless": True, "is_ics": False},
        ],
    }
    created = create(client, "configs", body)

    for key, value in body.items():
        assert created[key] == value, key
    assert get(client, "configs", created["id"]) == created
    assert client.get(f"{API}/configs/").json()["data"] == [created]

    edited = patch(client, "configs", created["id"], {"description": "changed"})
    assert edited["testvars"] == body["testvars"]
    assert edited["interfaces"] == body["interfaces"]
    assert edited["name"] == "lab"
    edited = patch(client, "configs", created["id"], {"testvars": {"wan": "eth9"}})
    assert edited["testvars"] == {"wan": "eth9"}
    assert edited["interfaces"] == body["interfaces"]
    assert edited["description"] == "changed"

    assert client.delete(f"{API}/configs/{created['id']}/").status_code in {200, 204}
    assert client.get(f"{API}/configs/{created['id']}/").status_code == 404
    assert total(client, "configs") == 0


def test_duplicate_names_are_409(client: TestClient) -> None:
    for resource, extra in (
        ("packages", {"command": ["true"]}),
        ("devices", {}),
        ("configs", {}),
    ):
        first = create(client, resource, {"name": "same"} | extra)
        other = create(client, resource, {"name": "other"} | extra)

        conflict(client.post(f"{API}/{resource}/", json={"name": "same"} | extra), "same")
        conflict(client.patch(f"{API}/{resource}/{other['id']}/", json={"name": "same"}), "same")

        assert total(client, resource) == 2, resource
        assert get(client, resource, other["id"])["name"] == "other"
        assert get(client, resource, first["id"]) == first
        # Renaming to its own name is no conflict.
        assert patch(client, resource, first["id"], {"name": "same"})["name"] == "same"


# Conflicts between packages, configs, devices and jobs ------------------------------------


def test_config_or_device_used_by_a_package_cannot_be_deleted(client: TestClient) -> None:
    config = create(client, "configs", {"name": "cfg"})
    device = create(client, "devices", {"name": "dut"})
    pkg = package(client, config_id=config["id"], device_id=device["id"])

    conflict(client.delete(f"{API}/configs/{config['id']}/"), "package")
    conflict(client.delete(f"{API}/devices/{device['id']}/"), "package")
    assert get(client, "configs", config["id"]) == config
    assert get(client, "devices", device["id"]) == device
    assert get(client, "packages", pkg["id"])["config_id"] == config["id"]

    # "0" unsets the references; then both can go.
    unlinked = patch(client, "packages", pkg["id"], {"config_id": "0", "device_id": "0"})
    assert unlinked["config_id"] == "0"
    assert unlinked["device_id"] == "0"
    assert client.delete(f"{API}/configs/{config['id']}/").status_code in {200, 204}
    assert client.delete(f"{API}/devices/{device['id']}/").status_code in {200, 204}


def test_package_with_a_pending_job_cannot_be_deleted(client: TestClient) -> None:
    pkg = package(client, "busy", command=["echo", "x"])
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)

    conflict(client.delete(f"{API}/packages/{pkg['id']}/"), "job")

    assert get(client, "packages", pkg["id"]) == pkg
    assert get(client, "jobs", job["id"])["status"] == "pending"
    # Once its jobs have ended it can go; the finished job keeps the package's name.
    assert client.post(f"{API}/jobs/{job['id']}/cancel/").status_code == 200
    assert client.delete(f"{API}/packages/{pkg['id']}/").status_code in {200, 204}
    kept = get(client, "jobs", job["id"])
    assert kept["status"] == "cancelled"
    assert kept["package_name"] == "busy"


# Package values ---------------------------------------------------------------------------


def test_zero_timeout_and_concurrency_mean_none(client: TestClient) -> None:
    unlimited = package(
        client, "unlimited", command=["sh", "-c", "sleep 2; echo done"], timeout=0, concurrency=0
    )
    limited = package(client, "limited", command=["true"], timeout=5, concurrency=1)

    assert unlimited["timeout"] == 0
    assert unlimited["concurrency"] == 0
    assert limited["timeout"] == 5
    assert limited["concurrency"] == 1
    zero = client.get(f"{API}/packages/", params={"filter": "timeout=0"}).json()["data"]
    assert [p["name"] for p in zero] == ["unlimited"]
    cleared = patch(client, "packages", limited["id"], {"timeout": 0, "concurrency": 0})
    assert cleared["timeout"] == 0
    assert cleared["concurrency"] == 0
    assert len(client.get(f"{API}/packages/", params={"filter": "timeout=0"}).json()["data"]) == 2

    # A timeout of 0 never fires, and a concurrency of 0 lets both jobs run at once.
    first = launch(client, package_id=unlimited["id"])
    second = launch(client, package_id=unlimited["id"])
    one, two = wait_for(client, first["id"]), wait_for(client, second["id"])
    assert one["status"] == "completed"
    assert two["status"] == "completed"
    assert stamp(two["started"]) < stamp(one["finished"])
    assert stamp(one["started"]) < stamp(two["finished"])


def test_negative_results_null_or_list(client: TestClient) -> None:
    none = package(client, "none", command=["true"])
    empty = package(client, "empty", command=["true"], negative_results=[])
    some = package(client, "some", command=["true"], negative_results=["bad", "worse"])

    assert none["negative_results"] is None
    assert empty["negative_results"] == []
    assert some["negative_results"] == ["bad", "worse"]
    assert get(client, "packages", empty["id"])["negative_results"] == []
    assert get(client, "packages", none["id"])["negative_results"] is None

    # Edits that leave it out keep it; an explicit null or list replaces it.
    assert patch(client, "packages", empty["id"], {"note": "n"})["negative_results"] == []
    assert patch(client, "packages", none["id"], {"note": "n"})["negative_results"] is None
    assert (
        patch(client, "packages", some["id"], {"negative_results": None})["negative_results"]
        is None
    )
    assert patch(client, "packages", none["id"], {"negative_results": []})["negative_results"] == []
    assert get(client, "packages", some["id"])["negative_results"] is None
    assert get(client, "packages", none["id"])["negative_results"] == []

    overlap = {
        "name": "x",
        "command": ["true"],
        "positive_results": ["a"],
        "negative_results": ["a"],
    }
    assert client.post(f"{API}/packages/", json=overlap).status_code == 400


# How values reach the job's argv -----------------------------------------------------------


def test_device_attribute_fills_a_command_placeholder(client: TestClient) -> None:
    device = create(client, "devices", {"name": "dut", "attributes": {"address": "10.1.2.3"}})
    other = create(client, "devices", {"name": "spare", "attributes": {"address": "10.9.9.9"}})
    own = package(
        client, "own", command=["echo", "ssh {address} as {device_name}"], device_id=device["id"]
    )
    bare = package(client, "bare", command=["echo", "{address}"])

    assert output(client, package_id=own["id"]) == "ssh 10.1.2.3 as dut\n"
    assert output(client, package_id=own["id"], device_id=other["id"]) == "ssh 10.9.9.9 as spare\n"
    assert output(client, package_id=bare["id"], device_id=device["id"]) == "10.1.2.3\n"
    job = launch(client, package_id=own["id"], device_id=other["id"], run_at=FUTURE)
    assert job["device_name"] == "spare"
    assert job["device_id"] == other["id"]


def test_variable_precedence(client: TestClient) -> None:
    package_config = create(
        client,
        "configs",
        {
            "name": "pkgcfg",
            "testvars": {"a": "pkgcfg", "b": "pkgcfg", "c": "pkgcfg", "d": "pkgcfg"},
        },
    )
    job_config = create(
        client,
        "configs",
        {"name": "jobcfg", "testvars": {"b": "jobcfg", "c": "jobcfg", "d": "jobcfg"}},
    )
    pkg = package(
        client,
        "vars",
        command=[*PRINT_EACH, "{a}", "{b}", "{c}", "{d}"],
        config_id=package_config["id"],
    )
    testvars = [{"name": "c", "value": "testvar"}, {"name": "d", "value": "testvar"}]

    only_configs = output(client, package_id=pkg["id"], config_id=job_config["id"])
    assert only_configs == "[pkgcfg]\n[jobcfg]\n[jobcfg]\n[jobcfg]\n"
    with_testvars = output(
        client, package_id=pkg["id"], config_id=job_config["id"], options={"testvars": testvars}
    )
    assert with_testvars == "[pkgcfg]\n[jobcfg]\n[testvar]\n[testvar]\n"
    everything = output(
        client,
        package_id=pkg["id"],
        config_id=job_config["id"],
        options={"testvars": testvars, "extra_cli_args": "-testvar d=cli"},
    )
    assert everything == "[pkgcfg]\n[jobcfg]\n[testvar]\n[cli]\n"
    # Without a job config: package config < testvars < -testvar.
    no_job_config = output(
        client,
        package_id=pkg["id"],
        options={"testvars": testvars[1:], "extra_cli_args": "-testvar c=cli"},
    )
    assert no_job_config == "[pkgcfg]\n[pkgcfg]\n[cli]\n[testvar]\n"


def test_extra_cli_args_are_split_like_a_shell_into_separate_arguments(
    client: TestClient,
) -> None:
    echo = package(client, "echo", command=["echo"], allowed_args=["*"])
    each = package(client, "each", command=PRINT_EACH, allowed_args=["*"])

    assert output(client, package_id=echo["id"], options={"extra_cli_args": "'a b' c"}) == "a b c\n"
    assert output(client, package_id=each["id"], options={"extra_cli_args": "'a b' c"}) == (
        "[a b]\n[c]\n"
    )
    args = """ "x  y"  z\\ w '' "$(id)" '; rm -rf /' `id` $HOME -testvar v=1 last """
    assert output(client, package_id=each["id"], options={"extra_cli_args": args}) == (
        "[x  y]\n[z w]\n[]\n[$(id)]\n[; rm -rf /]\n[`id`]\n[$HOME]\n[last]\n"
    )


def test_shell_metacharacters_in_values_stay_literal(client: TestClient, tmp_path: Any) -> None:
    canary = tmp_path / "canary"
    canary.write_text("still here")
    dangerous = {
        "semi": f"; rm -rf {canary}",
        "subst": "$(id)",
        "tick": "`id`",
        "pipe": "a | cat && echo pwned > /dev/null",
        "glob": "*",
        "quote": 'it\'s "quoted"',
        "newline": "one\ntwo",
    }
    config = create(client, "configs", {"name": "evil", "testvars": dangerous})
    names = list(dangerous)
    pkg = package(
        client,
        "literal",
        command=[*PRINT_EACH, *(f"{{{n}}}" for n in names)],
        config_id=config["id"],
        env={"SEMI": "{semi}", "SUBST": "{subst}"},
    )
    shell = package(
        client,
        "env",
        command=["sh", "-c", 'printf "[%s]\\n" "$SEMI" "$SUBST"'],
        env={"SEMI": "{semi}", "SUBST": "{subst}"},
        config_id=config["id"],
    )
    expected = "".join(f"[{dangerous[n]}]\n" for n in names)

    assert output(client, package_id=pkg["id"]) == expected
    # The same text as a job testvar and as a -testvar in extra_cli_args.
    testvars = [{"name": "subst", "value": "$(touch pwned); ; rm -rf /"}]
    from_testvar = output(client, package_id=pkg["id"], options={"testvars": testvars})
    assert "[$(touch pwned); ; rm -rf /]\n" in from_testvar
    cli = {"extra_cli_args": "-testvar 'subst=$(id); rm -rf /'"}
    assert "[$(id); rm -rf /]\n" in output(client, package_id=pkg["id"], options=cli)
    # Through the environment too: the value is data, never re-read as shell text.
    assert output(client, package_id=shell["id"]) == f"[{dangerous['semi']}]\n[$(id)]\n"
    assert canary.read_text() == "still here"
