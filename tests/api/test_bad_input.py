"""Every bad input gets a clear 4xx in the one error shape, never a 500, and nothing is half
written: a refused request leaves the database exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobyard.settings import Settings
from tests.api.helpers import TERMINAL, create, launch, package, wait_for

FUTURE = "9999-01-01T00:00:00Z"
JOBS = "/api/v1/jobs/"
PROBLEM_KEYS = {"timestamp", "error", "type", "title", "status", "detail"}


def problem(response: httpx.Response, status: int, *words: str) -> str:
    """Check the error shape and status; return the message, which names every word."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    message = body["error"]
    assert isinstance(message, str)
    assert message
    assert body["detail"] == message
    for word in words:
        assert word in message, (word, message)
    return message


def each(cases: list[Any], check: Any) -> None:
    """Run `check` on every case and report all the cases that fail, not just the first.

    The test client re-raises server exceptions, so a 500 shows up as its exception here."""
    failures = []
    for case in cases:
        try:
            check(*case) if isinstance(case, tuple) else check(case)
        except Exception as exc:  # a server error surfaces here as the exception itself
            failures.append(f"{case!r}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def count(client: TestClient, resource: str = "jobs") -> int:
    response = client.get(f"/api/v1/{resource}/", params={"limit": "none"})
    assert response.status_code == 200, response.text
    total: int = response.json()["links"]["total"]
    return total


def post_json(client: TestClient, body: Any, path: str = JOBS, **params: str) -> httpx.Response:
    return client.post(path, json=body, params=params)


def post_raw(client: TestClient, content: bytes, path: str = JOBS) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return client.post(path, content=content, headers=headers)


@pytest.fixture
def pkg(client: TestClient) -> dict[str, Any]:
    return package(client, "ok", command=["echo", "hi"])


# Bodies -----------------------------------------------------------------------------------


def test_malformed_json_is_400(client: TestClient) -> None:
    def check(content: bytes) -> None:
        problem(post_raw(client, content), 400, "JSON")
        problem(post_raw(client, content, "/api/v1/packages/"), 400, "JSON")

    each(
        [b'{"package_id": ', b"{'package_id': '1'}", b"not json", b'{"a": 1}}', b"\xff\xfe{}"],
        check,
    )
    assert count(client) == 0
    assert count(client, "packages") == 0


def test_a_body_that_is_not_an_object_is_400(client: TestClient, pkg: dict[str, Any]) -> None:
    def check(content: bytes) -> None:
        problem(post_raw(client, content), 400, "object")
        problem(post_raw(client, content, "/api/v1/configs/"), 400, "object")

    each([b'[{"package_id": "1"}]', b'"x"', b"1", b"null", b"true", b"[]"], check)
    assert count(client) == 0
    assert count(client, "configs") == 0


def test_unknown_top_level_field_is_named(client: TestClient, pkg: dict[str, Any]) -> None:
    problem(post_json(client, {"package_id": pkg["id"], "bogus": 1}), 400, "bogus")
    problem(post_json(client, {"name": "n", "comand": ["x"]}, "/api/v1/packages/"), 400, "comand")
    problem(post_json(client, {"name": "d", "adress": "x"}, "/api/v1/devices/"), 400, "adress")
    assert count(client) == 0
    assert count(client, "packages") == 1
    assert count(client, "devices") == 0


def test_unknown_option_is_named(client: TestClient, pkg: dict[str, Any]) -> None:
    body = {"package_id": pkg["id"], "options": {"tags": ["a"], "tagz": ["b"]}}
    problem(post_json(client, body), 400, "options", "tagz")
    body = {"package_id": pkg["id"], "options": {"testvars": [{"name": "a", "vaule": "b"}]}}
    problem(post_json(client, body), 400, "vaule")
    assert count(client) == 0


def test_wrong_types_are_named(client: TestClient, pkg: dict[str, Any]) -> None:
    def check(body: dict[str, Any], named: str) -> None:
        problem(post_json(client, {"package_id": pkg["id"]} | body), 400, named)

    cases = [
        ({"package_id": True}, "package_id"),
        ({"package_id": False}, "package_id"),
        ({"package_id": "abc"}, "package_id"),
        ({"package_id": "-1"}, "package_id"),
        ({"package_id": 1.5}, "package_id"),
        ({"package_id": ["1"]}, "package_id"),
        ({"package_id": {"id": "1"}}, "package_id"),
        ({"device_id": "x1"}, "device_id"),
        ({"config_id": True}, "config_id"),
        ({"options": {"tags": "x"}}, "tags"),
        ({"options": {"tags": [1, 2]}}, "tags"),
        ({"options": "nightly"}, "options"),
        ({"options": {"testvars": {"a": "b"}}}, "testvars"),
        ({"options": {"testvars": [{"value": "b"}]}}, "name"),
        ({"options": {"extra_cli_args": ["-a"]}}, "extra_cli_args"),
        ({"priority": "high"}, "priority"),
        ({"context": ["a"]}, "context"),
        ({"run_at": 12345}, "run_at"),
        ({"run_at": True}, "run_at"),
    ]
    each(cases, check)
    assert count(client) == 0


def test_wrong_types_in_catalog_bodies_are_named(client: TestClient) -> None:
    packages = "/api/v1/packages/"
    problem(post_json(client, {"name": "p", "command": "echo hi"}, packages), 400, "command")
    problem(
        post_json(client, {"name": "p", "command": ["a"], "timeout": "1m"}, packages),
        400,
        "timeout",
    )
    problem(
        post_json(client, {"name": "p", "command": ["a"], "timeout": -1}, packages), 400, "timeout"
    )
    problem(
        post_json(client, {"name": "p", "command": ["a"], "env": {"A": 1}}, packages), 400, "env"
    )
    problem(post_json(client, {"name": 5}, "/api/v1/devices/"), 400, "name")
    problem(
        post_json(client, {"name": "d", "attributes": ["a"]}, "/api/v1/devices/"), 400, "attributes"
    )
    problem(
        post_json(client, {"name": "c", "testvars": {"a": 1}}, "/api/v1/configs/"), 400, "testvars"
    )
    problem(post_json(client, {"name": ""}, "/api/v1/configs/"), 400, "name")
    problem(post_json(client, {}, "/api/v1/configs/"), 400, "name")
    assert count(client, "packages") == 0
    assert count(client, "devices") == 0
    assert count(client, "configs") == 0


def test_bad_run_at_is_400(client: TestClient, pkg: dict[str, Any]) -> None:
    def check(run_at: str) -> None:
        problem(post_json(client, {"package_id": pkg["id"], "run_at": run_at}), 400, "run_at")

    cases = [
        "tomorrow",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01T00:00:00+25:00",
        "01/02/2024",
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
    ]
    each(cases, check)
    assert count(client) == 0


def test_naive_run_at_is_taken_as_utc(client: TestClient, pkg: dict[str, Any]) -> None:
    # What the client sends for a naive datetime: isoformat() without an offset.
    job = launch(client, package_id=pkg["id"], run_at="9999-01-01T02:03:04.000567")

    assert job["run_at"] == "9999-01-01T02:03:04.000567+00:00"
    stored = client.get(f"{JOBS}{job['id']}/").json()["data"]
    assert stored["run_at"] == "9999-01-01T02:03:04.000567+00:00"
    assert stored["status"] == "pending"
    found = client.get(JOBS, params={"filter": "run_at=9999-01-01T04:03:04.000567+02:00"})
    assert [j["id"] for j in found.json()["data"]] == [job["id"]]


def test_oversized_body_is_413(client: TestClient, settings: Settings, pkg: dict[str, Any]) -> None:
    limit = settings.max_body_bytes
    assert limit == 1024 * 1024
    body = {"package_id": pkg["id"], "run_at": FUTURE, "context": {"x": "a" * limit}}
    problem(post_json(client, body), 413, str(limit))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield b'{"package_id": "' + pkg["id"].encode() + b'", "context": {"x": "'
        for _ in range(limit // 65536 + 1):
            yield b"a" * 65536
        yield b'"}}'

    streamed = client.post(JOBS, content=chunks(), headers={"Content-Type": "application/json"})
    problem(streamed, 413, str(limit))
    problem(post_json(client, {"name": "big", "description": "d" * limit}, "/api/v1/configs/"), 413)
    assert count(client) == 0
    assert count(client, "configs") == 0
    # Just under the limit is fine.
    small = {"package_id": pkg["id"], "run_at": FUTURE, "context": {"x": "a" * (limit - 200)}}
    assert post_json(client, small).status_code == 200


def test_a_bulk_launch_has_a_cap_of_its_own(
    client: TestClient, settings: Settings, pkg: dict[str, Any]
) -> None:
    """A bulk launch may be more than an ordinary body may hold; its own cap still holds."""
    item = {"package_id": pkg["id"], "run_at": FUTURE, "options": {"tags": ["t" * 200]}}
    many = {"jobs": [item] * 5_000}
    assert len(json.dumps(many)) > settings.max_body_bytes

    answer = post_json(client, many, bulk="launch")
    assert answer.status_code == 200, answer.text[:300]
    assert count(client) == 5_000
    limit = settings.max_bulk_body_bytes
    huge = {"jobs": [item | {"context": {"x": "a" * (limit // 2)}}] * 2}
    problem(post_json(client, huge, bulk="launch"), 413, str(limit))
    assert count(client) == 5_000


def test_json_that_python_reads_badly_is_400(client: TestClient, pkg: dict[str, Any]) -> None:
    """Deep nesting and huge numbers are valid JSON text that a parser may refuse: 400."""
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 kB, well under the body limit
    problem(post_raw(client, deep), 400)
    problem(
        post_raw(client, b'{"name": "d", "attributes": ' + deep + b"}", "/api/v1/devices/"), 400
    )
    huge = b'{"package_id": "%s", "context": {"n": %s}}' % (pkg["id"].encode(), b"9" * 5000)
    problem(post_raw(client, huge), 400)
    assert count(client) == 0
    assert count(client, "devices") == 0


def test_numbers_out_of_range_are_400(client: TestClient) -> None:
    """1e400 is JSON for infinity to Python; a body must not make the answer invalid JSON."""
    packages = "/api/v1/packages/"

    def check(field: str, text: str) -> None:
        name = f"{field}-{text[:6]}".encode()  # distinct, so one acceptance cannot mask another
        body = b'{"name": "%s", "command": ["true"], "%s": %s}' % (
            name,
            field.encode(),
            text.encode(),
        )
        problem(post_raw(client, body, packages), 400, field)

    cases = [
        ("timeout", "1e400"),
        ("timeout", "-1e400"),
        ("retry_delay", "1e400"),
        ("concurrency", str(10**20)),
        ("max_attempts", "0"),
        ("timeout", "NaN"),
    ]
    each(cases, check)
    assert count(client, "packages") == 0
    # Every answer so far was strict JSON (no Infinity or NaN tokens).
    listed = client.get(packages)
    assert "Infinity" not in listed.text
    assert "NaN" not in listed.text


def test_nul_characters_are_refused_on_every_database(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    """PostgreSQL cannot store NUL in text or JSONB, so neither database may accept one."""

    def check(path: str, body: dict[str, Any]) -> None:
        response = post_json(client, body, path)
        assert response.status_code == 400, response.text
        problem(response, 400)

    nul = "a\u0000b"
    cases = [
        ("/api/v1/devices/", {"name": nul}),
        ("/api/v1/devices/", {"name": "d1", "attributes": {"k": nul}}),
        ("/api/v1/devices/", {"name": "d2", "description": nul}),
        ("/api/v1/configs/", {"name": "c1", "testvars": {"k": nul}}),
        ("/api/v1/configs/", {"name": "c2", "testvars": {nul: "v"}}),
        ("/api/v1/packages/", {"name": "p1", "command": ["echo", nul]}),
        ("/api/v1/packages/", {"name": "p2", "command": ["true"], "tags": [nul]}),
        ("/api/v1/packages/", {"name": "p3", "command": ["true"], "env": {"E": nul}}),
        (JOBS, {"package_id": pkg["id"], "options": {"tags": [nul]}}),
        (JOBS, {"package_id": pkg["id"], "options": {"begin_at": nul}}),
        (JOBS, {"package_id": pkg["id"], "options": {"testvars": [{"name": "x", "value": nul}]}}),
        (JOBS, {"package_id": pkg["id"], "context": {"k": nul}}),
    ]
    each(cases, check)
    assert count(client) == 0
    assert count(client, "devices") == 0
    assert count(client, "configs") == 0
    assert count(client, "packages") == 1


def test_environment_variable_names_are_checked(client: TestClient) -> None:
    """A name with "=" or NUL cannot be put in a process environment: refuse the package."""

    def check(name: str) -> None:
        body = {"name": f"p{len(name)}", "command": ["true"], "env": {name: "x"}}
        problem(post_json(client, body, "/api/v1/packages/"), 400, "env")

    each(["A=B", "=", "A\u0000BC"], check)
    assert count(client, "packages") == 0


# Query strings ----------------------------------------------------------------------------


def test_bad_filter_is_400_naming_it(client: TestClient) -> None:
    def check(text: str, named: str) -> None:
        problem(client.get(JOBS, params={"filter": text}), 400, named)

    cases = [
        ("bogus=1", "bogus"),
        ("options.bogus=1", "options.bogus"),
        ("Package_name=x", "Package_name"),
        ("argv=x", "argv"),
        ("id", "id"),
        ("id^5", "id^5"),
        ("=5", "=5"),
        ("id=>5", "id=>5"),
        ("id===5", "id===5"),
        ("id~5", "~"),
        ("active>true", ">"),
        ("tags<{a}", "<"),
        ("tags~a", "~"),
        ("package_name@>{a}", "@>"),
        ("tags@>a", "tags"),
        ("tags=a", "tags"),
        ("id=abc", "abc"),
        ("id=1.5", "1.5"),
        ("id=99999999999999999999", "99999999999999999999"),
        ("active=maybe", "maybe"),
        ("created>2024-13-01", "2024-13-01"),
        ("created>yesterday", "yesterday"),
        ("created>2024-01-01T00:00:00+99:00", "2024-01-01T00:00:00+99:00"),
        ("run_at=0", "run_at"),
    ]
    each(cases, check)
    # The same checks guard bulk operations that select by filter.
    problem(client.post(JOBS, params={"bulk": "delete", "filter": "bogus=1"}), 400, "bogus")


def test_regex_that_does_not_compile_is_400(client: TestClient) -> None:
    def check(pattern: str) -> None:
        for op in ("~", "!~", "~*", "!~*"):
            response = client.get(JOBS, params={"filter": f"package_name{op}{pattern}"})
            problem(response, 400, "regular expression")

    each(["(", "[a-", "a{2,1}", "+a", "(?P<n>a", "\\"], check)


def test_regex_that_one_database_cannot_run_is_still_4xx(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    """Python (SQLite) and PostgreSQL disagree about some syntax: 200 or 400, never 500."""
    launch(client, package_id=pkg["id"], run_at=FUTURE)

    def check(op: str, pattern: str) -> None:
        response = client.get(JOBS, params={"filter": f"package_name{op}{pattern}"})
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 400:
            problem(response, 400, "regular expression")
        # The same filter selecting jobs for a bulk delete (with id=0 it selects none).
        selection = [
            ("bulk", "delete"),
            ("filter", f"package_name{op}{pattern}"),
            ("filter", "id=0"),
        ]
        deleted = client.post(JOBS, params=selection)
        assert deleted.status_code in {200, 204, 400}, deleted.text

    patterns = ["(?P<n>al)pha", "(?<n>al)pha", "a(?#comment)l", "\\Aal", "(?i)OK", "a++", "(?x)o k"]
    each([(op, p) for op in ("~", "~*") for p in patterns], check)
    assert count(client) == 1


def test_unknown_filter_on_packages_devices_configs(client: TestClient) -> None:
    for resource in ("packages", "devices", "configs"):
        problem(client.get(f"/api/v1/{resource}/", params={"filter": "nope=1"}), 400, "nope")
        problem(client.get(f"/api/v1/{resource}/", params={"sort": "nope"}), 400, "nope")


def test_bad_list_parameters_are_400(client: TestClient) -> None:
    def check(params: dict[str, str], named: str) -> None:
        problem(client.get(JOBS, params=params), 400, named)
        problem(client.get("/api/v1/packages/", params=params), 400, named)

    cases = [
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "100000000"}, "limit"),
        ({"page": "-1"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "99999999999999999999"}, "page"),
        ({"sort": "bogus"}, "bogus"),
        ({"sort": "-id,bogus"}, "bogus"),
        ({"sort": "tags"}, "tags"),
        ({"sort": "--id"}, "--id"),
        ({"sort": "id desc"}, "id desc"),
        ({"type": "both"}, "both"),
        ({"detailed": "maybe"}, "detailed"),
    ]
    each(cases, check)


# References and ids -----------------------------------------------------------------------


def test_launch_with_an_unknown_reference_is_4xx(client: TestClient, pkg: dict[str, Any]) -> None:
    def check(field: str, message: str) -> None:
        body = {"package_id": pkg["id"], field: "99999"}
        response = post_json(client, body)
        assert 400 <= response.status_code < 500
        assert response.status_code not in {401, 403, 405}
        problem(response, response.status_code, message)
        interfaces = post_json(client, body, process="interfaces")
        assert interfaces.status_code == response.status_code
        problem(interfaces, interfaces.status_code, message)

    cases = [
        ("package_id", "no such package"),
        ("device_id", "no such device"),
        ("config_id", "no such config"),
    ]
    each(cases, check)
    assert count(client) == 0


def test_package_with_an_unknown_reference_is_refused(client: TestClient) -> None:
    for field, message in (("config_id", "no such config"), ("device_id", "no such device")):
        body = {"name": "p", "command": ["true"], field: "99999"}
        response = post_json(client, body, "/api/v1/packages/")
        assert 400 <= response.status_code < 500
        assert response.status_code not in {401, 403, 405}
        problem(response, response.status_code, message)
    assert count(client, "packages") == 0


def test_unknown_job_is_404_no_such_job(client: TestClient, pkg: dict[str, Any]) -> None:
    launch(client, package_id=pkg["id"], run_at=FUTURE)  # job 1 exists; the others do not

    def check(job_id: str) -> None:
        path = f"{JOBS}{job_id}/"
        assert problem(client.get(path), 404) == "no such Job"
        assert problem(client.patch(path, json={"device_id": None}), 404) == "no such Job"
        assert problem(client.delete(path), 404) == "no such Job"
        assert problem(client.post(f"{path}cancel/"), 404) == "no such Job"
        assert problem(client.get(f"{path}events/"), 404) == "no such Job"

    each(["99999", "abc", "0", "-1", "1.0", "1e3", "99999999999999999999999"], check)
    assert count(client) == 1


def test_unknown_catalog_object_is_404(client: TestClient) -> None:
    def check(resource: str, message: str) -> None:
        for object_id in ("99999", "abc"):
            path = f"/api/v1/{resource}/{object_id}/"
            assert problem(client.get(path), 404) == message
            assert problem(client.patch(path, json={"description": "x"}), 404) == message
            assert problem(client.delete(path), 404) == message

    cases = [
        ("packages", "no such package"),
        ("devices", "no such device"),
        ("configs", "no such config"),
    ]
    each(cases, check)


# Templates --------------------------------------------------------------------------------


def test_package_command_placeholder_must_be_a_plain_name(client: TestClient) -> None:
    existing = package(client, "fine", command=["echo", "ok"])

    def check(element: str) -> None:
        body = {"name": "p", "command": ["echo", element]}
        problem(post_json(client, body, "/api/v1/packages/"), 400, element)
        env_body = {"name": "p", "command": ["echo"], "env": {"E": element}}
        problem(post_json(client, env_body, "/api/v1/packages/"), 400, element)
        response = client.patch(f"/api/v1/packages/{existing['id']}/", json=body)
        problem(response, 400, element)

    cases = ["{a.b}", "{a[0]}", "{0}", "{}", "{a!r}", "{a:>10}", "{ a }", "x{a", "x}a", "{-a}"]
    each(cases, check)
    assert count(client, "packages") == 1
    kept = client.get(f"/api/v1/packages/{existing['id']}/").json()["data"]
    assert kept["command"] == ["echo", "ok"]
    assert kept["name"] == "fine"
    assert kept["env"] == {}


def test_launch_with_an_undefined_variable_is_400_naming_it(client: TestClient) -> None:
    pkg = package(client, "needs", command=["echo", "{defined}", "--to={nowhere_var}"])
    config = create(client, "configs", {"name": "c", "testvars": {"defined": "yes"}})

    body = {"package_id": pkg["id"], "config_id": config["id"]}
    problem(post_json(client, body), 400, "nowhere_var")
    problem(post_json(client, body, process="interfaces"), 400, "nowhere_var")
    assert count(client) == 0
    # Given as a testvar it launches.
    testvars = [{"name": "nowhere_var", "value": "x"}]
    ok = launch(client, run_at=FUTURE, options={"testvars": testvars}, **body)
    assert ok["status"] == "pending"


def test_bad_extra_cli_args_are_400(client: TestClient, pkg: dict[str, Any]) -> None:
    for args in ("'unterminated", "-testvar", "-testvar novalue", "-testvar =x"):
        body = {"package_id": pkg["id"], "options": {"extra_cli_args": args}}
        problem(post_json(client, body), 400, "extra_cli_args")
    assert count(client) == 0


# Collection operations --------------------------------------------------------------------


def test_bulk_launch_with_one_bad_element_creates_nothing(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    launch(client, package_id=pkg["id"], run_at=FUTURE)
    good = {"package_id": pkg["id"], "run_at": FUTURE}
    bad_elements = [
        {"package_id": "99999"},
        {"package_id": pkg["id"], "run_at": "soon"},
        {"package_id": pkg["id"], "options": {"tags": "x"}},
        {"package_id": pkg["id"], "device_id": "424242"},
        {"package_id": pkg["id"], "bogus": 1},
        {"package_id": None},
    ]
    for bad in bad_elements:
        response = post_json(client, {"jobs": [good, good, bad, good]}, bulk="launch", all="False")
        assert 400 <= response.status_code < 500, response.text
        problem(response, response.status_code)
        assert count(client) == 1, bad


def test_a_bulk_launch_element_is_judged_alone_even_when_it_equals_the_one_before(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    """Equal items in a row share their checking; Python's 1 == 1.0 == True must not let a
    bad element pass for the good one before it."""
    number = int(pkg["id"])
    for bad in [float(number), True] if number == 1 else [float(number)]:
        body = {
            "jobs": [
                {"package_id": number, "run_at": FUTURE},
                {"package_id": bad, "run_at": FUTURE},
            ]
        }
        problem(post_json(client, body, bulk="launch"), 400, "package_id")
    assert count(client) == 0


def test_a_bad_bulk_launch_element_is_named_by_its_place_in_the_list_as_sent(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    """Repeats are validated once; an error still names the element where it was sent."""
    good = {"package_id": pkg["id"], "run_at": FUTURE}
    body = {"jobs": [good, good, good, good | {"priority": "soon"}, good]}
    problem(post_json(client, body, bulk="launch"), 400, "jobs.3.priority")
    assert count(client) == 0


def test_a_nul_escaped_anywhere_in_a_bulk_launch_is_refused(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    good = {"package_id": pkg["id"], "run_at": FUTURE}
    body = {"jobs": [good, good | {"context": {"note": "a\x00b"}}]}
    problem(post_json(client, body, bulk="launch"), 400, "NUL", "context")
    assert count(client) == 0


def test_bulk_launch_by_filter_with_a_bad_template_creates_nothing(client: TestClient) -> None:
    package(client, "first", command=["echo", "x"])
    package(client, "second", command=["echo", "{only_here}"])

    response = post_json(client, {}, bulk="launch", all="True")
    problem(response, 400, "only_here")
    problem(post_json(client, {}, bulk="launch", filter="bogus=1"), 400, "bogus")
    problem(
        post_json(client, {"fields": {"run_at": "soon"}}, bulk="launch", all="True"), 400, "run_at"
    )
    problem(post_json(client, {"jobs": []}, bulk="launch", all="True"), 400)
    assert count(client) == 0


def test_unknown_bulk_or_process_is_400(client: TestClient, pkg: dict[str, Any]) -> None:
    def bulk(value: str) -> None:
        body = {"jobs": [{"package_id": pkg["id"]}]}
        problem(post_json(client, body, bulk=value), 400, "bulk", value)

    def process(value: str) -> None:
        problem(post_json(client, {"package_id": pkg["id"]}, process=value), 400, "process", value)

    each(["foo", "", "copy"], bulk)
    each(["foo", ""], process)
    both = post_json(client, {"package_id": pkg["id"]}, bulk="launch", process="interfaces")
    problem(both, 400)
    assert count(client) == 0


def test_bulk_delete_with_nothing_selected_is_400(client: TestClient, pkg: dict[str, Any]) -> None:
    launch(client, package_id=pkg["id"], run_at=FUTURE)

    # What the client sends: no body at all, `all=False`.
    problem(client.post(JOBS, params={"bulk": "delete", "all": "False"}), 400)
    problem(client.post(JOBS, params={"bulk": "delete"}), 400)
    problem(post_json(client, {}, bulk="delete", all="False"), 400)
    problem(client.post(JOBS, params={"bulk": "delete", "all": "perhaps"}), 400, "all")
    problem(client.post(JOBS, params={"bulk": "delete", "filter": "nope=1"}), 400, "nope")
    problem(post_json(client, {"jobs": [{"id": "x"}]}, bulk="delete", all="False"), 400)
    problem(post_raw(client, b"{", JOBS + "?bulk=delete&all=False"), 400, "JSON")
    assert count(client) == 1


# Conflicts with the job's state -----------------------------------------------------------


def test_patch_or_delete_of_a_running_job_is_409(client: TestClient) -> None:
    sleeper = package(client, "sleeper", command=["sleep", "30"])
    other = package(client, "other", command=["true"])
    job = launch(client, package_id=sleeper["id"])
    try:
        running = wait_for(client, job["id"], {"running"} | TERMINAL)
        assert running["status"] == "running"
        path = f"{JOBS}{job['id']}/"

        problem(client.patch(path, json={"package_id": other["id"]}), 409, "running")
        problem(client.patch(path, json={"run_at": FUTURE}), 409)
        problem(client.delete(path), 409, "running")
        after = client.get(path).json()["data"]
        assert after["status"] == "running"
        assert after["package_name"] == "sleeper"
        # A bulk delete by id leaves it alone too.
        client.post(
            JOBS, params={"bulk": "delete", "all": "False"}, json={"jobs": [{"id": job["id"]}]}
        )
        assert client.get(path).status_code == 200
    finally:
        client.post(f"{JOBS}{job['id']}/cancel/")
        ended = wait_for(client, job["id"])
    assert ended["status"] == "cancelled"


def test_patch_of_a_finished_job_is_409(client: TestClient, pkg: dict[str, Any]) -> None:
    done = wait_for(client, launch(client, package_id=pkg["id"])["id"])
    cancelled = launch(client, package_id=pkg["id"], run_at=FUTURE)
    client.post(f"{JOBS}{cancelled['id']}/cancel/")

    for job_id, status in ((done["id"], "completed"), (cancelled["id"], "cancelled")):
        path = f"{JOBS}{job_id}/"
        problem(client.patch(path, json={"run_at": FUTURE}), 409, status)
        problem(client.patch(path, json={"device_id": "0"}), 409, status)
        assert client.get(path).json()["data"]["status"] == status
        problem(client.post(f"{path}cancel/"), 409)


def test_bad_patch_of_a_pending_job_changes_nothing(
    client: TestClient, pkg: dict[str, Any]
) -> None:
    job = launch(client, package_id=pkg["id"], run_at=FUTURE, options={"tags": ["keep"]})
    path = f"{JOBS}{job['id']}/"

    problem(client.patch(path, json={"package_id": "abc"}), 400, "package_id")
    response = client.patch(path, json={"package_id": "99999"})
    assert 400 <= response.status_code < 500
    problem(response, response.status_code, "no such package")
    problem(client.patch(path, json={"run_at": "later"}), 400, "run_at")
    problem(client.patch(path, json={"status": "completed"}), 400, "status")
    problem(client.patch(path, json={"options": {"tags": "x"}}), 400, "tags")
    problem(client.patch(path, content=b"[", headers={"Content-Type": "application/json"}), 400)

    after = client.get(path).json()["data"]
    assert after == job | {"updated": after["updated"]}
    assert after["updated"] == job["updated"]


# Auth, paths, methods ---------------------------------------------------------------------


def test_no_token_is_401_invalid_token(client: TestClient) -> None:
    anonymous = TestClient(client.app)  # same app and database, no Authorization header
    for method, path in (
        ("GET", JOBS),
        ("POST", JOBS),
        ("GET", "/api/v1/jobs/1/"),
        ("GET", "/api/v1/packages/"),
        ("GET", "/api/v1/system/hostname/"),
    ):
        response = anonymous.request(method, path, json={} if method == "POST" else None)
        assert problem(response, 401) == "invalid token"
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_wrong_token_is_401(client: TestClient, pkg: dict[str, Any]) -> None:
    def check(header: str) -> None:
        response = client.get(JOBS, headers={"Authorization": header})
        assert problem(response, 401) == "invalid token"
        assert "WWW-Authenticate" in response.headers
        body = {"package_id": pkg["id"]}
        refused = client.post(JOBS, json=body, headers={"Authorization": header})
        assert problem(refused, 401) == "invalid token"

    cases = [
        "Bearer wrong-token",
        "Bearer ",
        "test-admin-token",
        "Bearer test-admin-token-and-more",
        "Bearer a b",
    ]
    each(cases, check)
    assert count(client) == 0


def test_wrong_basic_credentials_are_401(client: TestClient) -> None:
    response = client.get(JOBS, headers={"Authorization": "Basic dGVzdDp0ZXN0"})  # test:test
    assert problem(response, 401) == "invalid username or password"
    assert "basic" in response.headers["WWW-Authenticate"].lower()


def test_paths_without_a_trailing_slash_are_served(client: TestClient, pkg: dict[str, Any]) -> None:
    launched = client.post(
        "/api/v1/jobs", json={"package_id": pkg["id"], "run_at": FUTURE}, follow_redirects=False
    )
    assert launched.status_code == 200, launched.text
    job_id = launched.json()["data"]["id"]

    listed = client.get("/api/v1/jobs", follow_redirects=False)
    assert listed.status_code == 200
    assert [j["id"] for j in listed.json()["data"]] == [job_id]
    got = client.get(f"/api/v1/jobs/{job_id}", follow_redirects=False)
    assert got.status_code == 200
    assert got.json()["data"]["id"] == job_id
    patched = client.patch(
        f"/api/v1/jobs/{job_id}", json={"run_at": FUTURE}, follow_redirects=False
    )
    assert patched.status_code == 200, patched.text
    assert client.get(f"/api/v1/packages/{pkg['id']}", follow_redirects=False).status_code == 200
    bulk = client.post("/api/v1/jobs?bulk=delete&all=True", follow_redirects=False)
    assert bulk.status_code < 300, bulk.text
    assert count(client) == 0
    assert client.get(f"/api/v1/jobs/{job_id}", follow_redirects=False).status_code == 404


def test_unknown_path_is_404_in_the_error_shape(client: TestClient) -> None:
    def check(path: str) -> None:
        problem(client.get(path, follow_redirects=False), 404)
        problem(client.post(path, json={}, follow_redirects=False), 404)

    cases = [
        "/api/v1/nothing/",
        "/api/v1/nothing",
        "/nothing",
        "/api/v1/jobs/1/nothing/",
        "/api/v2/jobs/",
    ]
    each(cases, check)


def test_wrong_method_is_405_in_the_error_shape(client: TestClient, pkg: dict[str, Any]) -> None:
    launch(client, package_id=pkg["id"], run_at=FUTURE)

    def check(method: str, path: str) -> None:
        response = client.request(method, path, follow_redirects=False)
        problem(response, 405)
        assert "allow" in {k.lower() for k in response.headers}

    cases = [
        ("PUT", "/api/v1/jobs/"),
        ("DELETE", "/api/v1/jobs/"),
        ("PATCH", "/api/v1/jobs/"),
        ("PUT", "/api/v1/jobs/1/"),
        ("POST", "/api/v1/jobs/1/"),
        ("GET", "/api/v1/jobs/1/cancel/"),
        ("PUT", "/api/v1/packages/"),
        ("POST", "/api/v1/system/hostname/"),
    ]
    each(cases, check)
    assert count(client) == 1
