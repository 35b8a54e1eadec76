"""BMC Release Process Management's REST job runs, over real HTTP, on both databases.

Packages and jobs are made with the native API as the admin; then `/v1/job_runs` is read the
way a BMC client does: a `token` parameter, `.json`/`.xml` suffixes or `Accept`, filters as
`filters[x]=`, plain `x=` or a GET body, and the answers compared with the seed's samples.
"""

from __future__ import annotations

import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from jobyard.api.dialects import bmc
from jobyard.domain.models import PackageKind
from jobyard.domain.statuses import RunStatus
from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer
from tests.seed_samples import BMC_JOB_RUN_XML

STEP = {
    "aasm_state": "complete",
    "id": 35,
    "name": "Test Automation",
    "request": {"aasm_state": "complete", "id": 3, "name": "Request Example"},
}
OTHER_STEP = {
    "aasm_state": "problem",
    "id": 36,
    "name": "Deploy",
    "request": {"aasm_state": "problem", "id": 4, "name": "Other request"},
}

# The seed's JSON sample of GET /v1/job_runs (seed 002), verbatim.
SEED_JSON: list[dict[str, Any]] = [
    {
        "automation_id": 6,
        "created_at": "2012-09-04T15:34:44-04:00",
        "finished_at": "2012-09-04T15:37:18-04:00",
        "id": 1,
        "job_type": "automation",
        "process_id": 7408,
        "results_path": "[...]/Portal/public/automation_results/request/SmartRelease/1003/"
        "step_35/output_1346787283.txt",
        "run_key": 1346787283,
        "started_at": "2012-09-04T15:34:44-04:00",
        "status": "Complete",
        "stderr": None,
        "stdout": None,
        "updated_at": "2012-09-04T15:37:18-04:00",
        "step": STEP,
    }
]


TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}")
HEX32 = re.compile(r"[0-9a-f]{32}")
JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "application/xml;charset=utf-8"
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}

# Braces in a command are placeholders; these scripts hold none.
TALKER = "import sys; print('out'); print('err', file=sys.stderr)"
SHOUTER = "import sys; sys.stdout.write('x' * 70000); sys.exit(3)"


def parse_xml(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def shape(element: ET.Element) -> Any:
    """Tag, attributes and nesting, in order; values are ignored."""
    return (element.tag, dict(element.attrib), [shape(child) for child in element])


def test_every_run_status_and_package_kind_has_a_bmc_name() -> None:
    assert set(bmc.STATUS_NAMES) == set(RunStatus)
    assert set(bmc.STATUS_NAMES.values()) == {"Running", "Complete", "Problem", "Cancelled"}
    assert set(bmc.JOB_TYPES) == set(PackageKind)


# The world every test reads -------------------------------------------------------------


@dataclass
class Yard:
    """The live server, a native admin session, and what was made through it."""

    url: str
    native: requests.Session
    runs: dict[str, int]  # job label -> run id
    packages: dict[str, int]
    jobs: dict[str, int]
    user_id: int

    def bmc(self, path: str = "", *, method: str = "GET", **kwargs: Any) -> requests.Response:
        """A BMC call authenticated with the `token` parameter."""
        query = dict(kwargs.pop("params", {}))
        query.setdefault("token", ADMIN_TOKEN)
        return requests.request(
            method, f"{self.url}/v1/job_runs{path}", params=query, timeout=30, **kwargs
        )

    def ids(self, response: requests.Response) -> set[int]:
        assert response.status_code == 200, response.text
        return {run["id"] for run in response.json()}


def _create(native: requests.Session, url: str, resource: str, body: dict[str, Any]) -> Any:
    response = native.post(f"{url}/api/v1/{resource}/", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _wait(native: requests.Session, url: str, job_ids: list[int]) -> None:
    deadline = time.monotonic() + 20
    for job_id in job_ids:
        while True:
            status = native.get(f"{url}/api/v1/jobs/{job_id}/", timeout=30).json()["data"]
            if status["status"] in TERMINAL:
                break
            assert time.monotonic() < deadline, f"job {job_id} is still {status['status']}"
            time.sleep(0.03)


def _run_of(native: requests.Session, url: str, job_id: int) -> int:
    found = native.get(f"{url}/api/v1/runs/", params={"filter": f"job_id={job_id}"}, timeout=30)
    data = found.json()["data"]
    assert len(data) == 1, data
    return int(data[0]["id"])


@pytest.fixture
def yard(live_server: LiveServer) -> Iterator[Yard]:
    """Four runs: complete with output, failed with big output, complete and quiet, running
    (an external job started by hand); and one pending external job, which has no run."""
    url = live_server.url
    native = requests.Session()
    native.headers.update(AUTH)
    packages = {
        "talker": _create(
            native, url, "packages", {"name": "talker", "command": [sys.executable, "-c", TALKER]}
        ),
        "shouter": _create(
            native,
            url,
            "packages",
            {"name": "shouter", "command": [sys.executable, "-c", SHOUTER]},
        ),
        "quiet": _create(native, url, "packages", {"name": "quiet", "command": ["true"]}),
        "outside": _create(native, url, "packages", {"name": "outside", "kind": "external"}),
    }
    contexts = {"talker": STEP, "shouter": OTHER_STEP, "quiet": STEP, "outside": STEP}
    jobs = {
        label: _create(
            native,
            url,
            "jobs",
            {"package_id": packages[label]["id"], "context": {"step": contexts[label]}},
        )
        for label in contexts
    }
    pending = _create(native, url, "jobs", {"package_id": packages["outside"]["id"]})
    started = native.post(f"{url}/api/v1/jobs/{jobs['outside']['id']}/start/", timeout=30)
    assert started.status_code == 200, started.text
    _wait(native, url, [int(jobs[label]["id"]) for label in ("talker", "shouter", "quiet")])
    yield Yard(
        url=url,
        native=native,
        runs={label: _run_of(native, url, int(job["id"])) for label, job in jobs.items()},
        packages={label: int(p["id"]) for label, p in packages.items()},
        jobs={**{label: int(j["id"]) for label, j in jobs.items()}, "pending": int(pending["id"])},
        user_id=int(jobs["talker"]["user_id"]),
    )
    native.close()


# Representations --------------------------------------------------------------------------


def _check_types(run: dict[str, Any]) -> None:
    sample = SEED_JSON[0]
    assert list(run) == list(sample)
    for key in ("automation_id", "id", "process_id", "run_key"):
        assert type(run[key]) is int, key
    for key in ("job_type", "results_path", "status"):
        assert isinstance(run[key], str), key
    for key in ("created_at", "started_at", "updated_at"):
        assert TIME.fullmatch(run[key]), (key, run[key])
    assert run["finished_at"] is None or TIME.fullmatch(run["finished_at"])
    assert run["stdout"] is None or isinstance(run["stdout"], str)
    assert run["stderr"] is None or isinstance(run["stderr"], str)
    assert run["step"] is None or list(run["step"]) == list(sample["step"])


def test_the_list_and_a_run_look_like_the_seed_samples(yard: Yard) -> None:
    listed = yard.bmc()

    assert listed.status_code == 200, listed.text
    assert listed.headers["Content-Type"] == JSON_TYPE
    body = listed.json()
    by_id = {run["id"]: run for run in body}
    assert [run["id"] for run in body] == sorted(yard.runs.values())  # no run for pending
    for run in body:
        _check_types(run)

    talker = by_id[yard.runs["talker"]]
    assert talker["status"] == "Complete"
    assert talker["job_type"] == "automation"
    assert talker["automation_id"] == yard.packages["talker"]
    assert (talker["stdout"], talker["stderr"]) == ("out\n", "err\n")
    assert talker["step"] == STEP
    assert talker["process_id"] > 0
    assert talker["created_at"] == talker["started_at"]
    assert talker["updated_at"] == talker["finished_at"]
    assert talker["results_path"] == f"/api/v1/jobs/{yard.jobs['talker']}/log/?attempt=1"
    log = yard.native.get(yard.url + talker["results_path"], timeout=30)
    assert sorted(log.json()["data"]["content"].splitlines()) == ["err", "out"]

    quiet = by_id[yard.runs["quiet"]]
    assert (quiet["status"], quiet["stdout"], quiet["stderr"]) == ("Complete", None, None)
    assert [type(quiet[k]) for k in quiet] == [type(v) for v in SEED_JSON[0].values()]

    shouter = by_id[yard.runs["shouter"]]
    assert shouter["status"] == "Problem"
    assert shouter["step"] == OTHER_STEP
    assert shouter["stdout"] == "x" * 65536  # capped
    assert shouter["stderr"] is None

    outside = by_id[yard.runs["outside"]]
    assert outside["status"] == "Running"
    assert outside["job_type"] == "notification"
    assert outside["finished_at"] is None
    assert outside["updated_at"] == outside["started_at"]

    one = yard.bmc(f"/{yard.runs['talker']}")
    assert one.status_code == 200
    assert one.headers["Content-Type"] == JSON_TYPE
    assert one.json() == talker


def test_xml_answers_match_the_seed_sample(yard: Yard) -> None:
    quiet = yard.bmc(f"/{yard.runs['quiet']}.xml")

    assert quiet.status_code == 200, quiet.text
    assert quiet.headers["Content-Type"] == XML_TYPE
    assert quiet.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert shape(parse_xml(quiet.text)) == shape(parse_xml(BMC_JOB_RUN_XML))
    record = parse_xml(quiet.text)
    assert record.findtext("id") == str(yard.runs["quiet"])
    assert record.findtext("status") == "Complete"
    assert record.findtext("step/request/name") == "Request Example"

    listed = yard.bmc(".xml")
    assert listed.headers["Content-Type"] == XML_TYPE
    root = parse_xml(listed.text)
    assert (root.tag, root.attrib) == ("job-runs", {"type": "array"})
    assert [child.tag for child in root] == ["job-run"] * len(yard.runs)
    assert [int(child.findtext("id") or 0) for child in root] == sorted(yard.runs.values())
    running = next(c for c in root if c.findtext("status") == "Running")
    finished_at = running.find("finished-at")
    assert finished_at is not None
    assert finished_at.attrib == {"nil": "true"}
    talker = next(c for c in root if c.findtext("id") == str(yard.runs["talker"]))
    assert talker.findtext("stdout") == "out\n"
    stdout = talker.find("stdout")
    assert stdout is not None
    assert stdout.attrib == {}


def test_the_format_comes_from_the_suffix_then_the_accept_header(yard: Yard) -> None:
    path = f"/{yard.runs['quiet']}"
    cases = [
        ("", {}, JSON_TYPE),
        ("", {"Accept": "application/xml"}, XML_TYPE),
        ("", {"Accept": "text/xml"}, XML_TYPE),
        ("", {"Accept": "application/json"}, JSON_TYPE),
        ("", {"Accept": "text/html,application/xml;q=0.9,*/*;q=0.8"}, XML_TYPE),
        ("", {"Accept": "*/*"}, JSON_TYPE),
        (".json", {"Accept": "application/xml"}, JSON_TYPE),
        (".xml", {"Accept": "application/json"}, XML_TYPE),
    ]
    for suffix, headers, expected in cases:
        for where in (path, ""):
            answer = yard.bmc(where + suffix, headers=headers)
            assert answer.status_code == 200, (where, suffix, headers, answer.text)
            assert answer.headers["Content-Type"] == expected, (where, suffix, headers)
    assert yard.bmc(params={"format": "xml"}).headers["Content-Type"] == XML_TYPE
    head = requests.head(
        f"{yard.url}/v1/job_runs{path}.xml", params={"token": ADMIN_TOKEN}, timeout=30
    )
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Type"] == XML_TYPE
    assert head.headers["ETag"] == yard.bmc(path + ".xml").headers["ETag"]
    assert yard.bmc(".yaml").status_code == 406
    assert yard.bmc(f"{path}.csv").status_code == 406


def test_rails_headers_and_conditional_gets(yard: Yard) -> None:
    first = yard.bmc(f"/{yard.runs['talker']}")
    etag = first.headers["ETag"]

    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["Cache-Control"] == "max-age=0, private, must-revalidate"
    assert HEX32.fullmatch(first.headers["X-Request-Id"])
    assert re.fullmatch(r"[0-9]+\.[0-9]{6}", first.headers["X-Runtime"])
    again = yard.bmc(f"/{yard.runs['talker']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert "X-Runtime" in again.headers
    stale = yard.bmc(f"/{yard.runs['talker']}", headers={"If-None-Match": '"0000", "1111"'})
    assert stale.status_code == 200
    assert stale.headers["ETag"] == etag
    xml_tag = yard.bmc(f"/{yard.runs['talker']}.xml").headers["ETag"]
    assert xml_tag != etag
    listed = yard.bmc()
    assert yard.bmc(headers={"If-None-Match": listed.headers["ETag"]}).status_code == 304
    for failing in (yard.bmc("/999999"), yard.bmc(params={"token": "nope"})):
        assert HEX32.fullmatch(failing.headers["X-Request-Id"])
        assert re.fullmatch(r"[0-9]+\.[0-9]{6}", failing.headers["X-Runtime"])


# Filters ----------------------------------------------------------------------------------


def _in_every_form(yard: Yard, name: str, value: Any) -> list[requests.Response]:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    xml_body = f"<filters><{name}>{text}</{name}></filters>"
    return [
        yard.bmc(params={f"filters[{name}]": text}),
        yard.bmc(params={name: text}),
        yard.bmc(json={"filters": {name: value}}),
        yard.bmc(data=xml_body.encode(), headers={"Content-Type": "text/xml"}),
        yard.bmc(
            data=xml_body.replace("_", "-").encode(),
            headers={"Content-Type": "application/xml"},
        ),
    ]


def test_every_filter_in_every_form(yard: Yard) -> None:
    everything = {run["id"]: run for run in yard.bmc().json()}
    r = yard.runs
    talker = everything[r["talker"]]
    cases: list[tuple[str, Any, set[int]]] = [
        ("currently_running", True, {r["outside"]}),
        ("currently_running", False, {r["talker"], r["shouter"], r["quiet"]}),
        ("status", "Complete", {r["talker"], r["quiet"]}),
        ("status", "Problem", {r["shouter"]}),
        ("status", "Running", {r["outside"]}),
        ("status", "running", {r["outside"]}),
        ("job_type", "automation", {r["talker"], r["shouter"], r["quiet"]}),
        ("job_type", "notification", {r["outside"]}),
        ("automation_id", yard.packages["talker"], {r["talker"]}),
        ("automation_id", yard.packages["outside"], {r["outside"]}),
        ("user_id", yard.user_id, set(r.values())),
        ("step_id", 35, {r["talker"], r["quiet"], r["outside"]}),
        ("step_id", 36, {r["shouter"]}),
        (
            "run_key",
            talker["run_key"],
            {i for i, run in everything.items() if run["run_key"] == talker["run_key"]},
        ),
        (
            "process_id",
            talker["process_id"],
            {i for i, run in everything.items() if run["process_id"] == talker["process_id"]},
        ),
    ]
    for name, value, expected in cases:
        for form, answer in enumerate(_in_every_form(yard, name, value)):
            assert yard.ids(answer) == expected, (name, value, form)


def test_filters_combine_and_an_empty_result_is_404(yard: Yard) -> None:
    both = yard.bmc(params={"filters[status]": "Complete", "step_id": "35"}, json={"filters": {}})
    assert yard.ids(both) == {yard.runs["talker"], yard.runs["quiet"]}
    narrowed = yard.bmc(
        params={"filters[job_type]": "automation"},
        json={"filters": {"status": "Problem", "token": None}},
    )
    assert narrowed.status_code == 400  # "token" is not a filter inside `filters`
    narrowed = yard.bmc(
        params={"filters[job_type]": "automation"}, json={"filters": {"status": "Problem"}}
    )
    assert yard.ids(narrowed) == {yard.runs["shouter"]}
    for name, value in [
        ("status", "Cancelled"),
        ("user_id", 999999),
        ("step_id", 1),
        ("automation_id", yard.packages["quiet"] + 1000),
    ]:
        for answer in _in_every_form(yard, name, value):
            assert answer.status_code == 404, (name, value, answer.text)
            assert answer.json() == {"error": "no job runs found"}
    plain_member = yard.bmc(json={"status": "Problem", "token": "ignored", "filters": None})
    assert yard.ids(plain_member) == {yard.runs["shouter"]}  # Rails merges a JSON body
    assert yard.bmc(params={"filters[status]": ""}).status_code == 200  # empty: no filter
    assert yard.bmc(params={"unrelated": "x"}).status_code == 200  # plain unknowns ignored


def test_bad_filter_values_are_400(yard: Yard) -> None:
    for name, value in [
        ("run_key", "abc"),
        ("process_id", "1.5"),
        ("automation_id", "{1,2}"),
        ("user_id", "-"),
        ("step_id", "99999999999999999999999"),
        ("currently_running", "maybe"),
        ("status", "Finished"),
        ("job_type", "script"),
    ]:
        for form, answer in enumerate(_in_every_form(yard, name, value)):
            assert answer.status_code == 400, (name, value, form, answer.text)
            assert name in answer.json()["error"]
    bad_bodies = [
        ({"Content-Type": "text/xml"}, b"<filters><status>Complete</filters>"),
        (
            {"Content-Type": "text/xml"},
            b'<!DOCTYPE x [<!ENTITY e "Complete">]><filters><status>&e;</status></filters>',
        ),
        ({"Content-Type": "text/xml"}, b"<other><status>Complete</status></other>"),
        ({"Content-Type": "application/json"}, b'{"filters": ["status"]}'),
        ({"Content-Type": "application/json"}, b'{"filters": {"status": ["Complete"]}}'),
        ({"Content-Type": "application/json"}, b"{not json"),
        ({"Content-Type": "application/json"}, b'{"filters": {"nope": 1}}'),
    ]
    for headers, body in bad_bodies:
        answer = yard.bmc(data=body, headers=headers)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["Content-Type"] == JSON_TYPE
    unknown = yard.bmc(".xml", params={"filters[nope]": "1"})
    assert unknown.status_code == 400
    error = parse_xml(unknown.text)
    assert error.tag == "errors"
    assert "nope" in (error.findtext("error") or "")
    assert yard.bmc(params={"filters[status][]": "Complete"}).status_code == 400


def test_a_running_job_is_running_until_it_ends(yard: Yard) -> None:
    running = yard.bmc(params={"currently_running": "true"})

    assert [run["status"] for run in running.json()] == ["Running"]
    cancelled = yard.native.post(
        f"{yard.url}/api/v1/jobs/{yard.jobs['outside']}/cancel/", timeout=30
    )
    assert cancelled.status_code == 200, cancelled.text
    assert yard.bmc(params={"currently_running": "true"}).status_code == 404
    ended = yard.bmc(f"/{yard.runs['outside']}").json()
    assert ended["status"] == "Cancelled"
    assert ended["finished_at"] is not None
    assert yard.ids(yard.bmc(params={"status": "Cancelled"})) == {yard.runs["outside"]}


# Errors -----------------------------------------------------------------------------------


def test_errors_follow_bmc(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/job_runs"
    token = {"token": ADMIN_TOKEN}

    empty = requests.get(url, params=token, timeout=30)
    assert (empty.status_code, empty.json()) == (404, {"error": "no job runs found"})
    assert empty.headers["Content-Type"] == JSON_TYPE
    empty_xml = requests.get(url + ".xml", params=token, timeout=30)
    assert empty_xml.status_code == 404
    assert empty_xml.headers["Content-Type"] == XML_TYPE
    assert shape(parse_xml(empty_xml.text)) == ("errors", {}, [("error", {}, [])])

    for path in ("/1", "/999999", "/abc", "/1.xml", "/0", "/1/extra"):
        missing = requests.get(url + path, params=token, timeout=30)
        assert missing.status_code == 404, (path, missing.text)

    bad_credentials: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"token": "not-a-token"}, {}),  # (query, headers)
        ({}, {}),
        ({}, {"Authorization": "Bearer not-a-token"}),
    ]
    for query, headers in bad_credentials:
        for path in ("", ".xml", "/1", "/1.json"):
            refused = requests.get(url + path, params=query, headers=headers, timeout=30)
            assert refused.status_code == 403, (path, query, headers, refused.text)
            assert "WWW-Authenticate" not in refused.headers
    wrong_password = requests.get(url, auth=("admin", "wrong"), timeout=30)  # once: no lock
    assert wrong_password.status_code == 403
    refused_xml = requests.get(url + ".xml", params={"token": "bad"}, timeout=30)
    assert parse_xml(refused_xml.text).tag == "errors"
    assert requests.get(url, headers=AUTH, timeout=30).status_code == 404  # Bearer works too

    for method, path in [
        ("POST", ""),
        ("POST", ".json"),
        ("PUT", "/1"),
        ("DELETE", "/1"),
        ("PATCH", "/1.xml"),
        ("POST", "/1"),
        ("PUT", ""),
        ("DELETE", ""),
    ]:
        refused = requests.request(method, url + path, params={"token": "bad"}, timeout=30)
        assert refused.status_code == 403, (method, path)
        allowed = requests.request(method, url + path, params=token, json={}, timeout=30)
        assert allowed.status_code == 405, (method, path, allowed.text)
        assert allowed.headers["Allow"] == "GET, HEAD"
        assert HEX32.fullmatch(allowed.headers["X-Request-Id"])
