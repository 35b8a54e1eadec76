"""Every request example of seed 004 (CDRouter's "Jobs" page), sent to the whole app.

Each test sends the page's request as written: same path, same query string, same body with
only the object ids replaced by ids of objects created here. The answers are checked against
the documented shapes: the `{timestamp, data}` envelope, `links` on lists, digit-string ids,
RFC 3339 times with an offset, and no null except where the contract allows one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import create, package, wait_for

JOBS = "/api/v1/jobs/"
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
DIGITS = re.compile(r"[0-9]+")

# The keys of a job in the page's examples, and the ones whose value may be null (contract §7).
JOB_KEYS = {
    "id", "active", "status", "options", "package_id", "package_name", "device_id",
    "device_name", "config_id", "config_name", "result_id", "user_id", "created", "updated",
    "automatic", "run_at", "interfaces", "interface_names", "uses_wireless", "uses_ics",
}  # fmt: skip
OPTION_KEYS = {"tags", "skip_tests", "begin_at", "end_at", "extra_cli_args"}
NULLABLE = {
    ("result_id",),
    ("ics_interface_name",),
    ("options", "tags"),
    ("options", "skip_tests"),
    ("options", "testvars"),
    # jobyard's own fields, null until known: the client leaves them out of its Job (it
    # loads only the fields it knows), so their null never reaches its null check.
    ("started",),
    ("finished",),
    ("exit_code",),
    ("outcome", "status"),
    ("outcome", "result"),
}
ID_KEYS = ("id", "package_id", "device_id", "config_id", "user_id")
TIME_KEYS = ("created", "updated", "run_at", "started", "finished")

# The page's bulk delete body, character for character: its trailing comma makes it invalid JSON.
SEED_BULK_DELETE_BODY = """{
    "jobs": [
        { "id": "1" },
        { "id": "2" },
        { "id": "3" },
    ]
}"""


# Shape checks -----------------------------------------------------------------------------


def assert_time(value: Any) -> None:
    assert isinstance(value, str), value
    assert RFC3339.fullmatch(value), f"not RFC 3339 with an offset: {value!r}"


def assert_envelope(body: dict[str, Any]) -> Any:
    assert_time(body["timestamp"])
    assert "data" in body
    assert body["data"] is not None
    return body["data"]


def _nulls(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        if path == ("context",):  # free-form, given by whoever launched the job
            return []
        return [p for k, v in value.items() for p in _nulls(v, (*path, str(k)))]
    if isinstance(value, list):
        return [p for item in value for p in _nulls(item, (*path, "[]"))]
    return []


def assert_interface(item: dict[str, Any]) -> None:
    assert isinstance(item["value"], str)
    assert item["value"]
    assert isinstance(item["is_wireless"], bool)
    assert isinstance(item["is_ics"], bool)
    assert item.get("name", "") is None or isinstance(item.get("name", ""), str)


def assert_job(job: dict[str, Any]) -> None:
    """A job as the page shows it: every key, the right types, and no stray null."""
    missing = JOB_KEYS - job.keys()
    assert not missing, f"job lacks {sorted(missing)}"
    stray = [p for p in _nulls(job) if p not in NULLABLE]
    assert not stray, f"null at {stray}"
    for key in ID_KEYS:
        assert isinstance(job[key], str), (key, job[key])
        assert DIGITS.fullmatch(job[key]), (key, job[key])
    assert job["result_id"] is None or (
        isinstance(job["result_id"], str) and DIGITS.fullmatch(job["result_id"])
    )
    for key in TIME_KEYS:
        if job[key] is not None:  # started and finished are null until known
            assert_time(job[key])
    for key in ("active", "automatic", "uses_wireless", "uses_ics"):
        assert isinstance(job[key], bool), key
    for key in ("status", "package_name", "device_name", "config_name"):
        assert isinstance(job[key], str), key
    assert job["active"] is (job["status"] == "running")
    options = job["options"]
    assert options.keys() >= OPTION_KEYS
    for key in ("begin_at", "end_at", "extra_cli_args"):
        assert isinstance(options[key], str), key
    for key in ("tags", "skip_tests"):
        assert options[key] is None or all(isinstance(t, str) for t in options[key])
    for item in job["interfaces"]:
        assert_interface(item)
    assert job["interface_names"] == [i["value"] for i in job["interfaces"]]
    assert job["uses_wireless"] is any(i["is_wireless"] for i in job["interfaces"])
    assert job["uses_ics"] is any(i["is_ics"] for i in job["interfaces"])


def assert_links(links: dict[str, Any], *, total: int, limit: int, current: int) -> None:
    for key in ("first", "last", "current", "total", "limit"):
        assert type(links[key]) is int, key
    assert links["total"] == total
    assert links["limit"] == limit
    assert links["current"] == current
    last = -(-total // limit)
    assert links["last"] == last
    if current < last:
        assert links["next"] == current + 1
    else:
        assert links.get("next") is None  # never 0: the client would ask for page 0 forever
    if current > 1:
        assert links["prev"] == current - 1
    else:
        assert links.get("prev") is None


def assert_problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body.get("data") is None or isinstance(body["data"], dict)
    assert body["status"] == status
    assert response.headers["content-type"].startswith("application/problem+json")
    message: str = body["error"]
    return message


def jobs_data(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    data = assert_envelope(response.json())
    assert isinstance(data, list)
    for job in data:
        assert_job(job)
    return data


# The objects the examples refer to --------------------------------------------------------


def lab(client: TestClient) -> dict[str, str]:
    """Device Foo, Config Foo (eth1 from `{lanInterface}`, wireless wifi0) and package `one`,
    an external package, so that its jobs stay pending unless something starts them."""
    device = create(
        client, "devices", {"name": "Device Foo", "attributes": {"address": "10.0.0.1"}}
    )
    config = create(
        client,
        "configs",
        {
            "name": "Config Foo",
            "testvars": {"lanInterface": "eth1"},
            "interfaces": [
                {"name": "lan", "value": "{lanInterface}", "is_wireless": False, "is_ics": False},
                {"name": "wlan", "value": "wifi0", "is_wireless": True, "is_ics": False},
            ],
        },
    )
    one = create(client, "packages", {"name": "one", "kind": "external", "config_id": config["id"]})
    return {"device": device["id"], "config": config["id"], "one": one["id"]}


def external(client: TestClient, name: str, **fields: Any) -> str:
    body = {"name": name, "kind": "external"} | fields
    package_id: str = create(client, "packages", body)["id"]
    return package_id


def launch_one(client: TestClient, package_id: str) -> dict[str, Any]:
    response = client.post(JOBS, json={"package_id": package_id})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["data"]
    return job


def all_jobs(client: TestClient) -> list[dict[str, Any]]:
    return jobs_data(client.get(JOBS, params={"limit": "none"}))


# List jobs, get a job ---------------------------------------------------------------------


def test_list_and_get_a_running_job_as_the_page_shows_it(client: TestClient) -> None:
    ids = lab(client)
    sleeper = package(client, "one-running", command=["sleep", "30"], config_id=ids["config"])
    launched = client.post(
        JOBS,
        json={"package_id": sleeper["id"], "device_id": ids["device"], "config_id": ids["config"]},
    ).json()["data"]
    wait_for(client, launched["id"], {"running"})

    try:
        response = client.get(JOBS)  # GET /api/v1/jobs/, no parameters
        data = jobs_data(response)
        links = response.json()["links"]
        assert_links(links, total=1, limit=25, current=1)
        [job] = data
        assert job["id"] == launched["id"]
        assert job["active"] is True
        assert job["status"] == "running"
        assert job["package_id"] == sleeper["id"]
        assert (job["device_id"], job["device_name"]) == (ids["device"], "Device Foo")
        assert (job["config_id"], job["config_name"]) == (ids["config"], "Config Foo")
        assert job["result_id"] is not None  # a running job has its result
        assert job["automatic"] is False
        assert job["options"]["tags"] == []
        assert job["options"]["skip_tests"] == []  # CDRouter sends null; a list is never null here
        assert job["options"]["begin_at"] == job["options"]["end_at"] == ""
        assert job["options"]["extra_cli_args"] == ""
        assert [(i["value"], i["is_wireless"], i["is_ics"]) for i in job["interfaces"]] == [
            ("eth1", False, False),
            ("wifi0", True, False),
        ]
        assert job["interface_names"] == ["eth1", "wifi0"]
        assert (job["uses_wireless"], job["uses_ics"]) == (True, False)

        got = client.get(f"{JOBS}{launched['id']}/")  # GET /api/v1/jobs/{id}/
        assert got.status_code == 200
        one = assert_envelope(got.json())
        assert isinstance(one, dict)
        assert_job(one)
        assert "links" not in got.json()
        assert {k: one[k] for k in JOB_KEYS - {"updated"}} == {
            k: job[k] for k in JOB_KEYS - {"updated"}
        }
    finally:
        client.post(f"{JOBS}{launched['id']}/cancel/")
    wait_for(client, launched["id"])


def test_list_links_over_several_pages(client: TestClient) -> None:
    one = lab(client)["one"]
    made = [launch_one(client, one)["id"] for _ in range(5)]

    first = client.get(JOBS, params={"limit": 2})
    assert [j["id"] for j in jobs_data(first)] == made[:2]
    assert_links(first.json()["links"], total=5, limit=2, current=1)
    middle = client.get(JOBS, params={"limit": 2, "page": 2})
    assert [j["id"] for j in jobs_data(middle)] == made[2:4]
    assert_links(middle.json()["links"], total=5, limit=2, current=2)
    last = client.get(JOBS, params={"limit": 2, "page": 3, "sort": "-id", "detailed": "true"})
    assert [j["id"] for j in jobs_data(last)] == made[:1]
    assert_links(last.json()["links"], total=5, limit=2, current=3)


def test_list_of_no_jobs(client: TestClient) -> None:
    response = client.get(JOBS)

    assert jobs_data(response) == []
    links = response.json()["links"]
    assert links["total"] == 0
    assert links.get("next") is None


@pytest.mark.parametrize("job_id", ["999999", "abc"])
def test_get_an_unknown_job_is_404_no_such_job(client: TestClient, job_id: str) -> None:
    response = client.get(f"{JOBS}{job_id}/")

    assert assert_problem(response, 404) == "no such Job"


# Launch a job -----------------------------------------------------------------------------


def test_launch_with_the_pages_body(client: TestClient) -> None:
    ids = lab(client)
    body = {
        "package_id": ids["one"],
        "device_id": ids["device"],
        "config_id": ids["config"],
        "options": {
            "tags": ["one", "two"],
            "skip_tests": ["cdrouter_basic_1", "cdrouter_basic_10"],
            "begin_at": "cdrouter_nat_1",
            "end_at": "cdrouter_nat_2",
            "extra_cli_args": "",
        },
    }

    response = client.post(JOBS, json=body)

    assert response.status_code == 200, response.text
    job = assert_envelope(response.json())
    assert_job(job)
    assert job["active"] is False
    assert job["status"] == "pending"
    assert job["options"] == job["options"] | body["options"]
    assert (job["package_id"], job["package_name"]) == (ids["one"], "one")
    assert (job["device_id"], job["device_name"]) == (ids["device"], "Device Foo")
    assert (job["config_id"], job["config_name"]) == (ids["config"], "Config Foo")
    assert job["result_id"] is None  # not started
    assert job["automatic"] is False
    assert job["created"] == job["updated"] == job["run_at"]  # launched to run now
    assert job["interface_names"] == ["eth1", "wifi0"]
    assert [i["is_wireless"] for i in job["interfaces"]] == [False, True]
    assert (job["uses_wireless"], job["uses_ics"]) == (True, False)
    again = client.get(f"{JOBS}{job['id']}/").json()["data"]
    assert again["options"] == job["options"]


# Delete a job -----------------------------------------------------------------------------


def test_delete_a_job(client: TestClient) -> None:
    one = lab(client)["one"]
    doomed = launch_one(client, one)["id"]
    kept = launch_one(client, one)["id"]

    response = client.delete(f"{JOBS}{doomed}/")

    assert response.status_code == 204
    assert response.content == b""
    assert assert_problem(client.get(f"{JOBS}{doomed}/"), 404) == "no such Job"
    assert [j["id"] for j in all_jobs(client)] == [kept]
    assert assert_problem(client.delete(f"{JOBS}{doomed}/"), 404) == "no such Job"


# Get a job's interfaces -------------------------------------------------------------------


def test_process_interfaces_with_the_pages_body(client: TestClient) -> None:
    one = lab(client)["one"]

    response = client.post(
        f"{JOBS}?process=interfaces",
        json={"package_id": one, "options": {"extra_cli_args": "-testvar lanInterface=eth2"}},
    )

    assert response.status_code == 200, response.text
    data = assert_envelope(response.json())
    for item in data:
        assert_interface(item)
    assert [{k: i[k] for k in ("value", "is_wireless", "is_ics")} for i in data] == [
        {"value": "eth2", "is_wireless": False, "is_ics": False},
        {"value": "wifi0", "is_wireless": True, "is_ics": False},
    ]
    assert all_jobs(client) == []  # processed, not launched


# Bulk launch jobs -------------------------------------------------------------------------


def test_bulk_launch_two_packages(client: TestClient) -> None:
    first = lab(client)["one"]
    second = external(client, "two")

    response = client.post(
        f"{JOBS}?bulk=launch", json={"jobs": [{"package_id": first}, {"package_id": second}]}
    )

    data = jobs_data(response)
    assert [(j["package_id"], j["package_name"]) for j in data] == [
        (first, "one"),
        (second, "two"),
    ]
    assert [j["status"] for j in data] == ["pending", "pending"]
    assert [j["id"] for j in all_jobs(client)] == [j["id"] for j in data]


def test_bulk_launch_two_packages_tagged_red_and_blue(client: TestClient) -> None:
    first = lab(client)["one"]
    second = external(client, "two")

    response = client.post(
        f"{JOBS}?bulk=launch",
        json={
            "jobs": [
                {"package_id": first, "options": {"tags": ["red"]}},
                {"package_id": second, "options": {"tags": ["blue"]}},
            ]
        },
    )

    data = jobs_data(response)
    assert [j["package_id"] for j in data] == [first, second]
    assert [j["options"]["tags"] for j in data] == [["red"], ["blue"]]
    stored = {j["id"]: j["options"]["tags"] for j in all_jobs(client)}
    assert stored == {data[0]["id"]: ["red"], data[1]["id"]: ["blue"]}


def _dhcp_packages(client: TestClient) -> dict[str, str]:
    return {
        "DHCP working": external(client, "DHCP working", tags=["working", "lan"]),
        "DHCP broken": external(client, "DHCP broken", tags=["broken"]),
        "NAT working": external(client, "NAT working", tags=["working"]),
        "dhcp lower": external(client, "dhcp lower", tags=["working"]),
    }


def test_bulk_launch_by_package_filters_with_the_pages_query(client: TestClient) -> None:
    """`bulk=edit` is how the page writes this bulk *launch*; we take it as launch.

    Our packages have no test list (they show `"testlist": []`), so no package matches
    `testlist@>{cdrouter_nat_1}` and nothing is launched; but the request is the page's own,
    so it must be understood, not refused.
    """
    _dhcp_packages(client)

    response = client.post(
        f"{JOBS}?bulk=edit&filter=name~DHCP&filter=testlist@>{{cdrouter_nat_1}}"
        "&filter=tags@>{working}",
        json={"fields": {"options": {"tags": ["monday"]}}},
    )

    assert jobs_data(response) == []
    assert all_jobs(client) == []


def test_bulk_launch_by_name_and_tags_filters_sets_each_jobs_tags(client: TestClient) -> None:
    """The page's example without its test-list filter, which no jobyard package can meet."""
    packages = _dhcp_packages(client)

    response = client.post(
        f"{JOBS}?bulk=edit&filter=name~DHCP&filter=tags@>{{working}}",
        json={"fields": {"options": {"tags": ["monday"]}}},
    )

    data = jobs_data(response)
    assert [(j["package_id"], j["package_name"]) for j in data] == [
        (packages["DHCP working"], "DHCP working")
    ]
    assert data[0]["options"]["tags"] == ["monday"]


def test_bulk_launch_all_packages(client: TestClient) -> None:
    one = lab(client)["one"]
    packages = {"one": one} | _dhcp_packages(client)

    response = client.post(
        f"{JOBS}?bulk=launch&all=true", json={"fields": {"options": {"tags": ["monday"]}}}
    )

    data = jobs_data(response)
    assert sorted(j["package_id"] for j in data) == sorted(packages.values())
    assert {j["package_name"] for j in data} == set(packages)
    assert all(j["options"]["tags"] == ["monday"] for j in data)
    assert all(j["status"] == "pending" and j["active"] is False for j in data)
    assert len(all_jobs(client)) == len(packages)


# Bulk delete jobs -------------------------------------------------------------------------


def test_bulk_delete_by_ids_with_the_pages_body(client: TestClient) -> None:
    one = lab(client)["one"]
    made = [launch_one(client, one)["id"] for _ in range(4)]
    text = SEED_BULK_DELETE_BODY
    for seed_id, job_id in zip(("1", "2", "3"), made, strict=False):
        text = text.replace(f'"id": "{seed_id}"', f'"id": "{job_id}"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # the page's trailing comma, kept

    invalid = client.post(
        f"{JOBS}?bulk=delete", content=text, headers={"Content-Type": "application/json"}
    )

    message = assert_problem(invalid, 400)
    assert "JSON" in message
    assert [j["id"] for j in all_jobs(client)] == made  # nothing deleted

    corrected = re.sub(r",(\s*\])", r"\1", text)
    assert json.loads(corrected) == {"jobs": [{"id": made[0]}, {"id": made[1]}, {"id": made[2]}]}
    response = client.post(
        f"{JOBS}?bulk=delete", content=corrected, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert [j["id"] for j in all_jobs(client)] == made[3:]


def test_bulk_delete_by_filter_package_name(client: TestClient) -> None:
    dns = external(client, "dns")
    other = external(client, "dnsmasq")
    doomed = [launch_one(client, dns)["id"] for _ in range(2)]
    kept = [launch_one(client, other)["id"] for _ in range(2)]

    response = client.post(f"{JOBS}?bulk=delete&filter=package_name=dns")  # no body

    assert response.status_code == 204, response.text
    assert [j["id"] for j in all_jobs(client)] == kept
    for job_id in doomed:
        assert client.get(f"{JOBS}{job_id}/").status_code == 404


def test_bulk_delete_all_spares_running_jobs(client: TestClient) -> None:
    one = lab(client)["one"]
    sleeper = package(client, "sleeper", command=["sleep", "30"])
    running = launch_one(client, sleeper["id"])["id"]
    pending = [launch_one(client, one)["id"] for _ in range(3)]
    wait_for(client, running, {"running"})

    try:
        response = client.post(f"{JOBS}?bulk=delete&all=true")  # no body

        assert response.status_code == 204, response.text
        left = all_jobs(client)
        assert [(j["id"], j["status"]) for j in left] == [(running, "running")]
        for job_id in pending:
            assert client.get(f"{JOBS}{job_id}/").status_code == 404
    finally:
        client.post(f"{JOBS}{running}/cancel/")
    assert wait_for(client, running)["status"] == "cancelled"
