"""Tag filters (`tags@>`, `&&`) read `job_tags`, which triggers keep in step with the jobs'
tags: they answer what the jobs' own tags say after launches, bulk launches, edits and
deletes, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import package
from tests.api.test_listing import FUTURE, JOBS, filtered, pending


def _bulk(client: TestClient, package_id: str, tags: list[list[str]]) -> list[int]:
    body = {
        "jobs": [{"package_id": package_id, "run_at": FUTURE, "options": {"tags": t}} for t in tags]
    }
    response = client.post(JOBS, params={"bulk": "launch"}, json=body)
    assert response.status_code == 200, response.text
    return [int(j["id"]) for j in response.json()["data"]]


def _edit_tags(client: TestClient, job_id: int, tags: list[str]) -> None:
    response = client.patch(f"{JOBS}{job_id}/", json={"options": {"tags": tags}})
    assert response.status_code == 200, response.text


def test_contains_and_overlaps_follow_launches(client: TestClient) -> None:
    pid = package(client, command=["true"])["id"]
    nightly = pending(client, pid, ["nightly"])
    both = pending(client, pid, ["nightly", "lab"])
    lab = pending(client, pid, ["lab", "lab"])
    pending(client, pid, [])
    assert filtered(client, "tags@>{nightly}") == [nightly, both]
    assert filtered(client, "tags@>{lab,nightly}") == [both]
    assert filtered(client, "options.tags@>{lab}") == [both, lab]
    assert filtered(client, "tags&&{nightly,lab}") == [nightly, both, lab]
    assert filtered(client, "tags&&{}") == []
    assert filtered(client, "tags@>{nightly}", sort="-id") == [both, nightly]


def test_bulk_launch_tags_every_job(client: TestClient) -> None:
    pid = package(client, command=["true"])["id"]
    ids = _bulk(client, pid, [["smoke"], ["nightly"], ["smoke", "nightly"], []] * 3)
    smoke = [job_id for i, job_id in enumerate(ids) if i % 4 in {0, 2}]
    assert filtered(client, "tags@>{smoke}") == smoke
    assert len(filtered(client, "tags@>{smoke,nightly}")) == 3


def test_an_edit_replaces_the_tags_a_filter_sees(client: TestClient) -> None:
    pid = package(client, command=["true"])["id"]
    job = pending(client, pid, ["nightly"])
    _edit_tags(client, job, ["weekly", "lab"])
    assert filtered(client, "tags@>{nightly}") == []
    assert filtered(client, "tags@>{weekly,lab}") == [job]
    _edit_tags(client, job, [])
    assert filtered(client, "tags&&{weekly,lab}") == []


def test_deleted_jobs_are_no_longer_found_by_tag(client: TestClient) -> None:
    pid = package(client, command=["true"])["id"]
    kept = pending(client, pid, ["nightly"])
    one, *many = _bulk(client, pid, [["nightly"]] * 4)
    assert client.delete(f"{JOBS}{one}/").status_code == 204
    body = {"jobs": [{"id": str(job_id)} for job_id in many]}
    response = client.post(JOBS, params={"bulk": "delete"}, json=body)
    assert response.status_code == 204, response.text
    assert filtered(client, "tags@>{nightly}") == [kept]


def test_a_tag_lists_and_counts_only_the_customers_own_jobs(client: TestClient) -> None:
    """Each customer's `tags@>{x}` finds its jobs and totals them from its own tag rows."""
    created = client.post("/api/v1/tenants/", json={"name": "tagged-elsewhere"})
    assert created.status_code == 200, created.text
    elsewhere = {"Customer-Id": created.json()["data"]["id"]}
    mine = pending(client, package(client, command=["true"])["id"], ["nightly"])
    theirs_package = client.post(
        "/api/v1/packages/", json={"name": "theirs", "command": ["true"]}, headers=elsewhere
    ).json()["data"]["id"]
    body = {"package_id": theirs_package, "run_at": FUTURE, "options": {"tags": ["nightly"]}}
    theirs = [
        client.post(JOBS, json=body, headers=elsewhere).json()["data"]["id"] for _ in range(3)
    ]

    listed = client.get(JOBS, params={"filter": "tags@>{nightly}", "limit": "1"})
    assert [job["id"] for job in listed.json()["data"]] == [str(mine)]
    assert listed.json()["links"]["total"] == 1
    listed = client.get(
        JOBS, params={"filter": "tags@>{nightly}", "sort": "-id", "limit": "2"}, headers=elsewhere
    )
    assert [job["id"] for job in listed.json()["data"]] == theirs[:0:-1]
    assert listed.json()["links"]["total"] == 3
    assert listed.json()["links"]["last"] == 2


def _page(client: TestClient, page: int, **params: str) -> tuple[list[int], dict[str, int]]:
    query = {"filter": "tags@>{nightly}", "limit": "2", "page": str(page)} | params
    listed = client.get(JOBS, params=query)
    assert listed.status_code == 200, listed.text
    return [int(job["id"]) for job in listed.json()["data"]], listed.json()["links"]


def test_a_tag_in_id_order_pages_through_its_jobs_alone(client: TestClient) -> None:
    """One tag sorted by id (or not sorted) is paged from the tag's own rows: every page
    holds the right jobs in the right order, the total and the last page are the tag's."""
    pid = package(client, command=["true"])["id"]
    tags = [["nightly"], [], ["lab"], ["nightly", "lab"], ["nightly"], [], ["nightly"]] * 2
    ids = _bulk(client, pid, tags)
    nightly = [job_id for job_id, held in zip(ids, tags, strict=True) if "nightly" in held]
    for sort, order in (("id", nightly), ("-id", nightly[::-1]), ("id,-id", nightly)):
        pages = [_page(client, n, sort=sort) for n in (1, 2, 3, 4, 5)]
        assert [job for found, _ in pages for job in found] == order, sort
        assert pages[0][1]["total"] == len(nightly) == 8
        assert pages[0][1]["last"] == 4
    assert [job for n in (1, 2, 3, 4) for job in _page(client, n)[0]] == nightly
    assert filtered(client, "tags@>{nightly}", sort="-id") == nightly[::-1]
