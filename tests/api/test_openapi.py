"""`/openapi.json` describes what the routes read and answer, well enough for a client
generator: parameters, bodies, answer schemas, errors and how to authenticate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis

from tests.api.published import JSON, operations, published_document


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> JSON:
    return published_document(tmp_path_factory)


def parameter_names(operation: JSON, where: str) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == where}


def test_is_openapi_3_1_with_unique_operation_ids(document: JSON) -> None:
    assert document["openapi"].startswith("3.1")
    ids = Counter(o["operationId"] for _m, _p, o in operations(document))
    assert len(ids) > 60
    assert [i for i, n in ids.items() if n > 1] == []


def test_security_schemes_cover_every_way_to_authenticate(document: JSON) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}
    assert schemes["basic"]["scheme"] == "basic"
    assert {(s.get("in"), s.get("name")) for s in schemes.values()} >= {
        ("query", "token"),
        ("query", "api-token"),
    }
    assert {next(iter(r)) for r in document["security"]} == set(schemes)
    public = {p for m, p, o in operations(document) if o.get("security") == []}
    assert {"/healthz", "/readyz", "/authenticate"} <= public
    assert "/api/v1/jobs/" not in public


def test_jobs_list_and_launch_declare_what_they_read(document: JSON) -> None:
    listing = document["paths"]["/api/v1/jobs/"]["get"]
    assert {"filter", "type", "sort", "page", "limit"} <= parameter_names(listing, "query")
    assert "Customer-Id" in parameter_names(listing, "header")
    launch = document["paths"]["/api/v1/jobs/"]["post"]
    assert {"bulk", "process", "filter", "all"} <= parameter_names(launch, "query")
    body = str(launch["requestBody"])
    for model in ("JobLaunchIn", "BulkLaunchIn", "BulkDeleteIn"):
        assert model in body
        assert model in document["components"]["schemas"]
    log = document["paths"]["/api/v1/jobs/{job_id}/log/"]["get"]
    assert {"offset", "attempt", "stream"} <= parameter_names(log, "query")
    assert {"text/plain", "text/event-stream"} <= set(log["responses"]["200"]["content"])


def test_every_operation_that_authenticates_declares_customer_id(document: JSON) -> None:
    authenticated = [(m, p, o) for m, p, o in operations(document) if o.get("security") != []]
    assert len(authenticated) > 60
    for method, path, operation in authenticated:
        declared = [p for p in operation.get("parameters", []) if p["name"] == "Customer-Id"]
        if path == "/metrics":  # its own token, or a system admin's: no customer to choose
            assert declared == []
            continue
        assert len(declared) == 1, (method, path)
        assert declared[0]["in"] == "header"
    for method, path, operation in operations(document):
        if operation.get("security") == []:
            assert "Customer-Id" not in parameter_names(operation, "header"), (method, path)


def test_every_answer_and_error_has_a_schema(document: JSON) -> None:
    for method, path, operation in operations(document):
        for code, answer in operation["responses"].items():
            for media_type, content in answer.get("content", {}).items():
                assert content.get("schema"), (method, path, code, media_type)
        if path.startswith("/api/v1/"):
            ok = operation["responses"].get("200") or operation["responses"]["204"]
            if "content" in ok:
                assert ok["content"]["application/json"]["schema"] != {}, (method, path)
            problem = operation["responses"]["401"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_bodies_are_the_models_the_routes_validate(document: JSON) -> None:
    paths = document["paths"]
    assert "PackageIn" in str(paths["/api/v1/packages/"]["post"]["requestBody"])
    assert "JobEditIn" in str(paths["/api/v1/jobs/{job_id}/"]["patch"]["requestBody"])
    assert "OptionsIn" in document["components"]["schemas"]  # nested models are components
    login = paths["/authenticate"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login)


def test_schemathesis_loads_every_operation(document: JSON, tmp_path: Path) -> None:
    loaded = schemathesis.openapi.from_dict(document)
    ok = [r.ok() for r in loaded.get_all_operations()]
    assert None not in ok
    assert len(ok) == len(operations(document))
