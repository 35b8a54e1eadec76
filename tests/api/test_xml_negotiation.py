"""The native API answers in XML to clients that ask for it, errors included."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fastapi.testclient import TestClient

from tests.api.helpers import create, launch

XML = {"Accept": "application/xml"}


def test_lists_and_objects_in_xml(client: TestClient) -> None:
    pkg = create(client, "packages", {"name": "x", "command": ["true"]})
    job = launch(client, package_id=pkg["id"], run_at="9999-01-01T00:00:00Z")

    listed = client.get("/api/v1/jobs/", headers=XML)
    one = client.get(f"/api/v1/jobs/{job['id']}/", headers=XML)

    assert listed.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(listed.content)
    assert root.tag == "response"
    assert [e.text for e in root.iter("id")][:1] == [job["id"]]
    assert root.find("links/total").text == "1"
    assert ET.fromstring(one.content).find("data/status").text == "pending"


def test_errors_in_xml(client: TestClient) -> None:
    missing = client.get("/api/v1/jobs/999/", headers=XML)
    assert missing.status_code == 404
    assert ET.fromstring(missing.content).find("error").text == "no such Job"


def test_json_stays_the_default(client: TestClient) -> None:
    assert client.get("/api/v1/jobs/").headers["content-type"] == "application/json"
    mixed = client.get("/api/v1/jobs/", headers={"Accept": "application/json, application/xml"})
    assert mixed.headers["content-type"] == "application/json"
