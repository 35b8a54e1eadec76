"""`/openapi.json` describes the SAYMON, BMC and BigChange operations as the native ones: their
parameters, bodies, answers and errors (in each dialect's own shape), under `dialect:*` tags
with operation ids of their own; and what they really answer fits what it declares."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient

from jobyard.api import openapi
from jobyard.api.app import create_app
from jobyard.api.dialects.bmc.filters import FILTERS
from jobyard.settings import Settings
from tests.api.helpers import create, wait_for
from tests.api.published import JSON, operations, published_document

DIALECTS = ("/node/api/", "/v1/")
BMC_RUNS = ("/v1/job_runs", "/v1/job_runs/", "/v1/job_runs.{fmt}")
BMC_RUN = ("/v1/job_runs/{ident}", "/v1/job_runs/{ident}/")
XML = "application/xml"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> JSON:
    return published_document(tmp_path_factory)


def dialect_operations(document: JSON) -> list[tuple[str, str, JSON]]:
    return [(m, p, o) for m, p, o in operations(document) if p.startswith(DIALECTS)]


def parameters(operation: JSON, where: str) -> dict[str, JSON]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}


def test_building_the_document_warns_of_nothing(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path, workers=0), run_workers=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of a repeated operation id
        openapi.build(app)


def test_operation_ids_are_unique(document: JSON) -> None:
    ids = Counter(o["operationId"] for _m, _p, o in operations(document))
    assert [i for i, n in ids.items() if n > 1] == []
    assert len(dialect_operations(document)) == 16


def test_every_dialect_operation_is_tagged_with_its_dialect(document: JSON) -> None:
    for method, path, operation in dialect_operations(document):
        tags = operation.get("tags", [])
        assert len(tags) == 1, (method, path)
        assert tags[0].startswith("dialect:"), (method, path)
        assert operation["operationId"].startswith(tags[0] + "_"), (method, path)
    tags = {o["tags"][0] for _m, _p, o in dialect_operations(document)}
    assert tags == {"dialect:saymon", "dialect:bmc", "dialect:bigchange"}


def test_bigchange_operations_need_customer_id_and_a_bearer_token(document: JSON) -> None:
    found = [(m, p, o) for m, p, o in dialect_operations(document) if p.startswith("/v1/jobs")]
    assert len(found) == 7
    for method, path, operation in found:
        customer = parameters(operation, "header").get("Customer-Id")
        assert customer is not None, (method, path)
        assert customer["required"] is True, (method, path)
        assert operation["security"] == [{"bearer": []}], (method, path)
    listing = document["paths"]["/v1/jobs"]["get"]
    assert {"pageNumber", "pageSize", "status", "typeId", "sortBy", "direction"} <= set(
        parameters(listing, "query")
    )
    history = document["paths"]["/v1/jobs/{job_id}/status/history"]["get"]
    assert {"pageNumber", "pageSize", "sortBy", "direction"} <= set(parameters(history, "query"))


def test_bmc_job_runs_declare_their_filters_and_xml(document: JSON) -> None:
    for path in BMC_RUNS:
        operation = document["paths"][path]["get"]
        query = parameters(operation, "query")
        for name in FILTERS:
            assert {name, f"filters[{name}]"} <= set(query), (path, name)
        assert "format" in query
        assert "Accept" in parameters(operation, "header")
        assert {"application/json", XML} <= set(operation["responses"]["200"]["content"])
        assert {"application/json", XML, "text/xml"} <= set(operation["requestBody"]["content"])
    assert "fmt" in parameters(document["paths"]["/v1/job_runs.{fmt}"]["get"], "path")
    for path in BMC_RUN:
        operation = document["paths"][path]["get"]
        assert "ident" in parameters(operation, "path")
        assert {"application/json", XML} <= set(operation["responses"]["200"]["content"])
        assert XML in operation["responses"]["404"]["content"]


# The dialect operations that read a body (tests/fuzz finds every body-reading operation by
# probing the app and checks that the document declares its body).
BODY_READERS = {
    ("POST", "/v1/jobs"),
    ("PUT", "/v1/jobs/{job_id}/result"),
    ("PUT", "/v1/jobs/{job_id}/start"),
    ("PUT", "/v1/jobs/{job_id}/cancel"),
    ("PATCH", "/node/api/jobs/{job_id}/results"),
    ("POST", "/node/api/objects/{obj_id}/operations/{op_id}/execute"),
    ("GET", "/v1/job_runs"),
    ("GET", "/v1/job_runs/"),
    ("GET", "/v1/job_runs.{fmt}"),
}


def test_every_dialect_operation_that_reads_a_body_declares_it(document: JSON) -> None:
    for method, path in BODY_READERS:
        body = document["paths"][path][method.lower()].get("requestBody")
        assert body is not None, (method, path)
        for content in body["content"].values():
            assert content["schema"], (method, path)
    for method, path, _operation in dialect_operations(document):
        if method in {"POST", "PUT", "PATCH"}:
            assert (method, path) in BODY_READERS, (method, path)


def test_every_answer_has_a_schema_and_errors_their_dialects_shape(document: JSON) -> None:
    schemas = document["components"]["schemas"]
    for method, path, operation in operations(document):
        for code, answer in operation["responses"].items():
            for media_type, content in answer.get("content", {}).items():
                assert content.get("schema"), (method, path, code, media_type)
                assert content["schema"] != {}, (method, path, code, media_type)
    shapes = {
        "/node/api/": {"application/json": "SaymonError"},
        "/v1/jobs": {"application/problem+json": "BigChangeProblem"},
        "/v1/job_runs": {"application/json": "BmcError", XML: "BmcError"},
    }
    for method, path, operation in dialect_operations(document):
        shape = next(s for prefix, s in shapes.items() if path.startswith(prefix))
        for code in ("403", "404", "503"):
            content = operation["responses"][code]["content"]
            assert set(content) == set(shape), (method, path, code)
            for media_type, name in shape.items():
                assert content[media_type]["schema"]["$ref"].endswith("/" + name)
    for name in ("SaymonError", "SaymonJob", "BigChangeProblem", "BigChangeJob", "BmcJobRun"):
        assert name in schemas
    assert "errors" not in schemas["BigChangeProblem"]["required"]  # on 422 only


# What the dialects really answer ---------------------------------------------------------


class Checker:
    """Validates real answers against the operation each was asked of."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.document: JSON = client.get("/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(self.document)
        self.seen: set[tuple[str, str]] = set()

    def __call__(
        self, method: str, template: str, url: str, status: int, **kwargs: Any
    ) -> httpx.Response:
        answer = self.client.request(method, url, **kwargs)
        assert answer.status_code == status, (method, url, answer.text)
        declared = self.document["paths"][template][method.lower()]["responses"][str(status)]
        media_type = answer.headers.get("content-type", "").split(";")[0]
        if answer.content:
            assert media_type in declared["content"], (method, url, media_type)
        else:
            assert "content" not in declared or status >= 400, (method, url)
        self.schema[template][method].validate_response(answer)
        self.seen.add((method, template))
        return answer

    def assert_asked_every(self, prefix: str) -> None:
        every = {(m, p) for m, p, _o in dialect_operations(self.document) if p.startswith(prefix)}
        assert every - self.seen == set()


@pytest.fixture
def check(client: TestClient) -> Checker:
    return Checker(client)


def test_saymon_answers_fit_the_declared_schemas(client: TestClient, check: Checker) -> None:
    device = create(client, "devices", {"name": "d"})["id"]
    command = create(client, "packages", {"name": "echo", "command": ["echo", "hi"]})["id"]
    execute = f"/node/api/objects/{device}/operations/{command}/execute"
    launch = "/node/api/objects/{obj_id}/operations/{op_id}/execute"
    job = check("POST", launch, execute, 200, json={"who": "x"}).json()
    check("POST", launch, execute, 400, json={"who": 1})
    wait_for(client, job)
    one, results = "/node/api/jobs/{job_id}", "/node/api/jobs/{job_id}/results"
    check("PATCH", results, f"/node/api/jobs/{job}/results", 200, json={"a": 1})
    check("PATCH", results, f"/node/api/jobs/{job}/results", 400, json=[1])
    check("GET", one, f"/node/api/jobs/{job}", 200)
    check("GET", one, "/node/api/jobs/999999", 404)
    check("GET", one, f"/node/api/jobs/{job}", 401, headers={"Authorization": "Basic eDp5"})
    check("GET", "/node/api/objects/{obj_id}/jobs", f"/node/api/objects/{device}/jobs", 200)
    check.assert_asked_every("/node/api/")


def test_bmc_answers_fit_the_declared_schemas(client: TestClient, check: Checker) -> None:
    command = create(client, "packages", {"name": "echo", "command": ["echo", "hi"]})["id"]
    step = {"id": 7, "name": "deploy", "request": {"id": 3}, "zone": "b"}
    for context in ({}, {"step": step}):
        wait_for(client, create(client, "jobs", {"package_id": command, "context": context})["id"])
    runs = check("GET", "/v1/job_runs", "/v1/job_runs", 200).json()
    assert sorted(r["step"] is None for r in runs) == [False, True]
    check("GET", "/v1/job_runs/", "/v1/job_runs/?filters[status]=complete", 200)
    check("GET", "/v1/job_runs.{fmt}", "/v1/job_runs.json?job_type=automation", 200)
    check("GET", "/v1/job_runs.{fmt}", "/v1/job_runs.xml", 200)
    check("GET", "/v1/job_runs", "/v1/job_runs", 200, headers={"Accept": XML})
    check("GET", "/v1/job_runs", "/v1/job_runs?filters[status]=Cancelled", 404)
    check("GET", "/v1/job_runs", "/v1/job_runs?filters[nope]=1", 400)
    check("GET", "/v1/job_runs", "/v1/job_runs", 400, content=b'{"filters": 1}')
    check("GET", "/v1/job_runs.{fmt}", "/v1/job_runs.yaml", 406)
    check("GET", "/v1/job_runs", "/v1/job_runs", 403, headers={"Authorization": "Bearer nope"})
    run = runs[0]["id"]
    check("GET", "/v1/job_runs/{ident}", f"/v1/job_runs/{run}", 200)
    check("GET", "/v1/job_runs/{ident}", f"/v1/job_runs/{run}.xml", 200)
    check("GET", "/v1/job_runs/{ident}/", f"/v1/job_runs/{run}/", 200)
    check("GET", "/v1/job_runs/{ident}", "/v1/job_runs/999999", 404)
    check("GET", "/v1/job_runs/{ident}", "/v1/job_runs/999999.xml", 404)
    check.assert_asked_every("/v1/job_runs")


def test_bigchange_answers_fit_the_declared_schemas(client: TestClient, check: Checker) -> None:
    body = {"name": "ext", "kind": "external", "positive_results": ["ok"]}
    external = int(create(client, "packages", body)["id"])
    customer = {"Customer-Id": "1"}

    def call(method: str, template: str, url: str, status: int, **kwargs: Any) -> Any:
        headers = customer | kwargs.pop("headers", {})
        return check(method, template, url, status, headers=headers, **kwargs)

    job = call("POST", "/v1/jobs", "/v1/jobs", 201, json={"typeId": external}).json()["id"]
    other = call("POST", "/v1/jobs", "/v1/jobs", 201, json={"typeId": external}).json()["id"]
    call("POST", "/v1/jobs", "/v1/jobs", 422, json={"typeId": 999999})
    call("POST", "/v1/jobs", "/v1/jobs", 400, json={"typeId": "x"})
    one = "/v1/jobs/{job_id}"
    call("GET", one, f"/v1/jobs/{job}", 200)
    call("GET", one, "/v1/jobs/abc", 404)
    check("GET", one, f"/v1/jobs/{job}", 400)  # no Customer-Id
    call("GET", one, f"/v1/jobs/{job}", 401, headers={"Authorization": "Bearer x"})
    call("PUT", "/v1/jobs/{job_id}/start", f"/v1/jobs/{job}/start", 204)
    result = {"status": "completedOk", "result": "ok"}
    call("PUT", "/v1/jobs/{job_id}/result", f"/v1/jobs/{job}/result", 204, json=result)
    call("PUT", "/v1/jobs/{job_id}/result", f"/v1/jobs/{job}/result", 422, json=result)
    call("PUT", "/v1/jobs/{job_id}/cancel", f"/v1/jobs/{job}/cancel", 422)
    call("PUT", "/v1/jobs/{job_id}/cancel", f"/v1/jobs/{other}/cancel", 204)
    call("GET", one, f"/v1/jobs/{job}", 200)
    listed = call("GET", "/v1/jobs", "/v1/jobs?pageSize=1&status=completedOk,cancelled", 200)
    assert listed.json()["pageItemCount"] == 1
    call("GET", "/v1/jobs", "/v1/jobs", 200)
    call("GET", "/v1/jobs", "/v1/jobs?sortBy=nope", 400)
    history = "/v1/jobs/{job_id}/status/history"
    call("GET", history, f"/v1/jobs/{job}/status/history?direction=descending", 200)
    check.assert_asked_every("/v1/jobs")
