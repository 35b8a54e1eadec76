"""The Rails-style XML writer and the small XML reader (`jobyard.api.xml`)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from jobyard.api.xml import HEADER, XmlError, dasherize, from_xml, singularize, to_xml
from tests.seed_samples import BMC_JOB_RUN_XML

EDT = timezone(timedelta(hours=-4))
SAMPLE_RUN: dict[str, Any] = {
    "automation_id": 6,
    "created_at": datetime(2012, 9, 4, 15, 34, 44, tzinfo=EDT),
    "finished_at": datetime(2012, 9, 4, 15, 37, 18, tzinfo=EDT),
    "id": 1,
    "job_type": "automation",
    "process_id": 7408,
    "results_path": "[...]/Portal/public/automation_results/request/SmartRelease/1003/"
    "step_35/output_1346787283.txt",
    "run_key": 1346787283,
    "started_at": datetime(2012, 9, 4, 15, 34, 44, tzinfo=EDT),
    "status": "Complete",
    "stderr": None,
    "stdout": None,
    "updated_at": datetime(2012, 9, 4, 15, 37, 18, tzinfo=EDT),
    "step": {
        "aasm_state": "complete",
        "id": 35,
        "name": "Test Automation",
        "request": {"aasm_state": "complete", "id": 3, "name": "Request Example"},
    },
}


def shape(element: ET.Element, *, values: bool) -> Any:
    """Tag, attributes and children in order (and leaf text when `values`)."""
    children = [shape(child, values=values) for child in element]
    text = (element.text or "").strip() if values and not children else None
    return (element.tag, dict(element.attrib), text, children)


def parse(document: str) -> ET.Element:
    return ET.fromstring(document.encode())


def test_the_seed_sample_is_reproduced_structurally_and_in_value() -> None:
    rendered = to_xml(SAMPLE_RUN, "job-run")

    assert rendered.startswith(HEADER)
    assert shape(parse(rendered), values=False) == shape(parse(BMC_JOB_RUN_XML), values=False)
    assert shape(parse(rendered), values=True) == shape(parse(BMC_JOB_RUN_XML), values=True)
    assert '<stderr nil="true"></stderr>' in rendered


def test_a_list_becomes_a_typed_array_of_singular_records() -> None:
    root = parse(to_xml([SAMPLE_RUN, SAMPLE_RUN | {"id": 2}], "job-run"))

    assert root.tag == "job-runs"
    assert root.attrib == {"type": "array"}
    assert [child.tag for child in root] == ["job-run", "job-run"]
    assert [child.findtext("id") for child in root] == ["1", "2"]
    assert shape(root[0], values=True) == shape(parse(BMC_JOB_RUN_XML), values=True)


def test_an_empty_list_is_an_empty_array() -> None:
    root = parse(to_xml([], "job-run"))

    assert (root.tag, root.attrib, list(root)) == ("job-runs", {"type": "array"}, [])


def test_scalar_types_and_nil() -> None:
    data = {
        "yes": True,
        "no": False,
        "count": -3,
        "ratio": 0.25,
        "price": Decimal("1.50"),
        "day": date(2024, 2, 29),
        "at": datetime(2024, 2, 29, 12, 0, 1, tzinfo=UTC),
        "name": "plain",
        "nothing": None,
        "empty": "",
    }
    root = parse(to_xml(data, "thing"))
    found = {child.tag: (child.attrib, child.text) for child in root}

    assert found == {
        "yes": ({"type": "boolean"}, "true"),
        "no": ({"type": "boolean"}, "false"),
        "count": ({"type": "integer"}, "-3"),
        "ratio": ({"type": "float"}, "0.25"),
        "price": ({"type": "decimal"}, "1.50"),
        "day": ({"type": "date"}, "2024-02-29"),
        "at": ({"type": "datetime"}, "2024-02-29T12:00:01+00:00"),
        "name": ({}, "plain"),
        "nothing": ({"nil": "true"}, None),
        "empty": ({}, None),
    }


def test_datetimes_are_written_by_the_given_formatter() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=UTC)

    rendered = to_xml({"at": at}, "x", format_datetime=lambda d: d.strftime("%Y%m%d"))

    assert parse(rendered).findtext("at") == "20240102"


def test_nested_mappings_and_lists_use_dasherised_singular_names() -> None:
    data = {"run_tags": ["a", "b"], "owner_info": {"first_name": "Ann"}, "data": [1], "nums": []}
    root = parse(to_xml(data, "job_run"))

    assert root.tag == "job-run"
    tags = root.find("run-tags")
    assert tags is not None
    assert tags.attrib == {"type": "array"}
    assert [(c.tag, c.text) for c in tags] == [("run-tag", "a"), ("run-tag", "b")]
    assert root.findtext("owner-info/first-name") == "Ann"
    listed = root.find("data")
    assert listed is not None
    assert [c.tag for c in listed] == ["data"]
    empty = root.find("nums")
    assert empty is not None
    assert (empty.attrib, list(empty)) == ({"type": "array"}, [])


def test_text_is_escaped_and_unrepresentable_characters_are_replaced() -> None:
    nasty = "a<b>&c\"d'e ]]> \x00\x1b[31m \ud800 é ✓"

    root = parse(to_xml({"text": nasty, "attr_like": '" onload="x'}, "x"))

    assert root.findtext("text") == "a<b>&c\"d'e ]]> \ufffd\ufffd[31m \ufffd é ✓"
    assert root.findtext("attr-like") == '" onload="x'


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("run_key", "run-key"),
        ("already-dashed", "already-dashed"),
        ("1st", "_1st"),
        ("with space<>", "with-space--"),
        ("café", "caf-"),
        ("", "_"),
        ("-x", "_-x"),
    ],
)
def test_names_are_dasherised_and_always_valid(name: str, expected: str) -> None:
    assert dasherize(name) == expected
    assert parse(to_xml({name: 1}, "x"))[0].tag == expected


def test_singularize_drops_one_trailing_s() -> None:
    assert [singularize(n) for n in ("job-runs", "status", "data", "s")] == [
        "job-run",
        "statu",
        "data",
        "s",
    ]


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        to_xml({"x": {1, 2}}, "x")


# Reading ----------------------------------------------------------------------------------


def test_filters_body_is_read_like_rails_hash_from_xml() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
    <filters>
      <status>Complete</status>
      <run-key type="integer">1346787283</run-key>
      <currently_running type="boolean">false</currently_running>
      <step-id nil="true"/>
      <ids type="array"><id type="integer">1</id><id type="integer">2</id></ids>
      <tag>a</tag><tag>b</tag><tag>c</tag>
    </filters>"""

    assert from_xml(body) == {
        "filters": {
            "status": "Complete",
            "run_key": 1346787283,
            "currently_running": False,
            "step_id": None,
            "ids": [1, 2],
            "tag": ["a", "b", "c"],
        }
    }


def test_what_we_write_reads_back() -> None:
    data = {"a_b": 1, "c": {"d": True, "e": None}, "f": "text & more"}

    assert from_xml(to_xml(data, "thing")) == {"thing": data}


def test_an_empty_root_is_an_empty_string() -> None:
    assert from_xml("<filters/>") == {"filters": ""}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;">]><filters><s>&lol2;</s></filters>',
            "document type",
        ),
        (b'<!doctype x SYSTEM "file:///etc/passwd"><x/>', "document type"),
        (b"<filters><status>Complete</filters>", "malformed"),
        (b"not xml at all", "malformed"),
        ("<x>é</x>".encode("latin-1"), "UTF-8"),
        (b"<x>" + b"a" * 70_000 + b"</x>", "larger"),
        (b"<a>" * 40 + b"</a>" * 40, "deeper"),
        (b'<x><n type="integer">seven</n></x>', "integer"),
        (b'<x><b type="boolean">maybe</b></x>', "boolean"),
    ],
)
def test_bad_or_dangerous_xml_is_refused(body: bytes, complaint: str) -> None:
    with pytest.raises(XmlError, match=complaint):
        from_xml(body)


def test_the_size_cap_can_be_set() -> None:
    with pytest.raises(XmlError, match="larger than 10 bytes"):
        from_xml(b"<filters></filters>", max_bytes=10)


def _chain(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"step": value}
    return value


def test_output_size_is_linear_in_nesting_depth() -> None:
    """Indentation stops growing at MAX_INDENT_DEPTH: twice the depth, twice the size (a
    6 KB JSON value made 2.9 MB of XML when every level was indented)."""
    sizes = {depth: len(to_xml(_chain(depth), "job-run")) for depth in (200, 400, 800)}
    assert sizes[800] / sizes[400] < 2.05
    assert sizes[400] / sizes[200] < 2.1
    text = json.dumps(_chain(600))
    assert len(to_xml(_chain(600), "job-run")) < 10 * len(text)


def test_any_depth_renders_without_recursion() -> None:
    document = to_xml(_chain(20_000), "job-run")
    assert document.count("<step>") == 20_000
    assert "<step>leaf</step>" in document
    assert document.endswith("</job-run>\n")
