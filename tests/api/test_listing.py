"""GET /api/v1/jobs/ and /api/v1/packages/ list semantics, on both databases: paging and
`links`, every filter operator, `type`, multi-key sorts, `detailed`, and the query string
exactly as the `cdrouter` client encodes it.

Jobs are launched with `run_at` far in the future so that they stay pending and never run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import TERMINAL, create, launch, package, wait_for

FUTURE = "9999-01-01T00:00:00Z"
JOBS = "/api/v1/jobs/"
PACKAGES = "/api/v1/packages/"
Params = list[tuple[str, str]]


def listing(client: TestClient, path: str, params: Params | str = ()) -> dict[str, Any]:
    if isinstance(params, str):
        response = client.get(path + params, follow_redirects=False)
    else:
        response = client.get(path, params=list(params), follow_redirects=False)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["data"], list)
    assert "links" in body
    return body


def ids(client: TestClient, params: Params | str = (), path: str = JOBS) -> list[int]:
    return [int(item["id"]) for item in listing(client, path, params)["data"]]


def filtered(client: TestClient, *filters: str, path: str = JOBS, **extra: str) -> list[int]:
    """Ids matching the filters, in id order unless a sort is given."""
    params = [("filter", f) for f in filters] + [("limit", "none")]
    params += list(extra.items())
    return ids(client, params, path)


def pending(client: TestClient, package_id: str, tags: list[str] | None = None) -> int:
    options = None if tags is None else {"tags": tags}
    job = launch(client, package_id=package_id, run_at=FUTURE, options=options)
    assert job["status"] == "pending"
    return int(job["id"])


def bulk_pending(client: TestClient, package_id: str, count: int) -> list[int]:
    body = {"jobs": [{"package_id": package_id, "run_at": FUTURE} for _ in range(count)]}
    response = client.post(JOBS, params={"bulk": "launch", "all": "False"}, json=body)
    assert response.status_code == 200, response.text
    return [int(j["id"]) for j in response.json()["data"]]


def at_offset(stamp: str, hours: int, minutes: int = 0) -> str:
    """The same instant as `stamp`, written with another UTC offset."""
    sign = -1 if hours < 0 else 1
    zone = timezone(sign * timedelta(hours=abs(hours), minutes=minutes))
    return datetime.fromisoformat(stamp).astimezone(zone).isoformat()


@pytest.fixture
def tagged(client: TestClient) -> dict[str, int]:
    """Six pending jobs of three packages with assorted tags, launched one by one."""
    alpha = package(client, "alpha", command=["true"])["id"]
    beta = package(client, "beta", command=["true"])["id"]
    xy = package(client, "x y", command=["true"])["id"]
    jobs = {
        "j1": pending(client, alpha, ["a", "b"]),
        "j2": pending(client, alpha, ["a"]),
        "j3": pending(client, beta, ["b", "c"]),
        "j4": pending(client, xy, ["a", "b", "c"]),
        "j5": pending(client, xy, []),
        "j6": pending(client, beta),  # options: null, so no tags at all
    }
    assert list(jobs.values()) == sorted(jobs.values())
    return jobs


# Paging -----------------------------------------------------------------------------------


def test_empty_list_has_total_zero_and_no_next(client: TestClient) -> None:
    body = listing(client, JOBS)

    assert body["data"] == []
    links = body["links"]
    assert links["total"] == 0
    assert "next" not in links
    assert "prev" not in links
    assert body["links"]["limit"] == 25


def test_default_limit_is_25_and_links_describe_the_pages(client: TestClient) -> None:
    pkg = package(client, command=["true"])
    launched = bulk_pending(client, pkg["id"], 30)

    first = listing(client, JOBS)
    second = listing(client, JOBS, [("page", "2")])

    assert [int(j["id"]) for j in first["data"]] == launched[:25]
    assert first["links"] == {
        "first": 1,
        "last": 2,
        "current": 1,
        "total": 30,
        "limit": 25,
        "next": 2,
    }
    assert [int(j["id"]) for j in second["data"]] == launched[25:]
    assert second["links"] == {
        "first": 1,
        "last": 2,
        "current": 2,
        "total": 30,
        "limit": 25,
        "prev": 1,
    }


def test_thirteen_items_with_limit_one_give_thirteen_pages(client: TestClient) -> None:
    pkg = package(client, command=["true"])
    launched = bulk_pending(client, pkg["id"], 13)

    # What the client's iter_list() does: follow links.next until there is none.
    seen: list[int] = []
    page: int | None = 1
    while page is not None:
        body = listing(client, JOBS, [("limit", "1"), ("page", str(page))])
        links = body["links"]
        assert links["last"] == 13
        assert links["total"] == 13
        assert links["limit"] == 1
        assert links["current"] == page
        assert links["first"] == 1
        assert links.get("prev") == (page - 1 if page > 1 else None)
        seen += [int(j["id"]) for j in body["data"]]
        page = links.get("next")
        assert page != 0
        assert len(seen) <= 13, "links.next never ended"

    assert seen == launched
    assert "prev" not in listing(client, JOBS, [("limit", "1"), ("page", "1")])["links"]
    assert "next" not in listing(client, JOBS, [("limit", "1"), ("page", "13")])["links"]


def test_limit_none_returns_everything_on_one_page(client: TestClient) -> None:
    pkg = package(client, command=["true"])
    launched = bulk_pending(client, pkg["id"], 30)

    for word in ("none", "None", "NONE"):
        body = listing(client, JOBS, [("limit", word)])
        assert [int(j["id"]) for j in body["data"]] == launched
        links = body["links"]
        assert links["total"] == 30
        assert links["current"] == 1
        assert links["last"] == 1
        assert links["limit"] >= 30
        assert "next" not in links
        assert "prev" not in links


def test_packages_page_like_jobs(client: TestClient) -> None:
    made = [int(package(client, f"p{n:02}", command=["true"])["id"]) for n in range(13)]

    body = listing(client, PACKAGES, [("limit", "1"), ("page", "13")])

    assert [int(p["id"]) for p in body["data"]] == made[12:]
    assert body["links"]["last"] == 13
    assert body["links"]["total"] == 13
    assert body["links"]["prev"] == 12
    assert "next" not in body["links"]
    assert ids(client, [("limit", "5"), ("page", "3")], PACKAGES) == made[10:]
    assert listing(client, PACKAGES)["links"]["limit"] == 25


# Filters on scalar fields -----------------------------------------------------------------


def test_comparisons_on_id(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert filtered(client, f"id={j3}") == [j3]
    assert filtered(client, f"id!={j3}") == [j1, j2, j4, j5, j6]
    assert filtered(client, f"id<{j3}") == [j1, j2]
    assert filtered(client, f"id<={j3}") == [j1, j2, j3]
    assert filtered(client, f"id>{j3}") == [j4, j5, j6]
    assert filtered(client, f"id>={j3}") == [j3, j4, j5, j6]


def test_comparisons_on_package_name(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert filtered(client, "package_name=alpha") == [j1, j2]
    assert filtered(client, "package_name=x y") == [j4, j5]
    assert filtered(client, "package_name!=alpha") == [j3, j4, j5, j6]
    assert filtered(client, "package_name<beta") == [j1, j2]
    assert filtered(client, "package_name<=beta") == [j1, j2, j3, j6]
    assert filtered(client, "package_name>beta") == [j4, j5]
    assert filtered(client, "package_name>=beta") == [j3, j4, j5, j6]
    assert filtered(client, "package_name=nothing") == []


def test_comparisons_on_created_with_any_offset(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()
    stamps = {j: client.get(f"{JOBS}{j}/").json()["data"]["created"] for j in tagged.values()}
    assert len(set(stamps.values())) == 6, "launched one by one, the jobs differ in `created`"
    utc = stamps[j3]

    for written in (utc, at_offset(utc, 5, 30), at_offset(utc, -4), at_offset(utc, 0)):
        assert filtered(client, f"created={written}") == [j3], written
        assert filtered(client, f"created!={written}") == [j1, j2, j4, j5, j6], written
        assert filtered(client, f"created<{written}") == [j1, j2], written
        assert filtered(client, f"created<={written}") == [j1, j2, j3], written
        assert filtered(client, f"created>{written}") == [j4, j5, j6], written
        assert filtered(client, f"created>={written}") == [j3, j4, j5, j6], written

    # A `Z` suffix, and nanoseconds (truncated to microseconds) as the real API writes them.
    z_form = datetime.fromisoformat(utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert filtered(client, f"created={z_form}") == [j3]
    nanos = datetime.fromisoformat(utc).strftime("%Y-%m-%dT%H:%M:%S.%f999+00:00")
    assert filtered(client, f"created<={nanos}") == [j1, j2, j3]


def test_datetime_filters_compare_instants_not_text(
    client: TestClient, tagged: dict[str, int]
) -> None:
    everything = list(tagged.values())

    # 9999-01-01T00:00:00Z written three ways.
    assert filtered(client, "run_at=9999-01-01T00:00:00Z") == everything
    assert filtered(client, "run_at=9999-01-01T02:00:00+02:00") == everything
    assert filtered(client, "run_at=9998-12-31T19:00:00-05:00") == everything
    assert filtered(client, "run_at<9999-01-01T00:00:00+00:00") == []
    assert filtered(client, "run_at>=9998-12-31") == everything  # a bare date: midnight UTC
    assert filtered(client, "run_at>9999-01-01T00:59:59+01:00") == everything
    assert filtered(client, "run_at>9999-01-01T01:00:00+01:00") == []
    assert filtered(client, "created<2000-01-01T00:00:00Z") == []
    assert filtered(client, "created>2000-01-01T00:00:00+14:00") == everything


def test_regular_expressions_on_package_name(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert filtered(client, "package_name~^al") == [j1, j2]
    assert filtered(client, "package_name~a") == [j1, j2, j3, j6]
    assert filtered(client, "package_name~^AL") == []
    assert filtered(client, "package_name!~^al") == [j3, j4, j5, j6]
    assert filtered(client, "package_name~*^AL") == [j1, j2]
    assert filtered(client, "package_name~*^BETA$") == [j3, j6]
    assert filtered(client, "package_name!~*^AL") == [j3, j4, j5, j6]
    assert filtered(client, "package_name~x y") == [j4, j5]
    assert filtered(client, "package_name~^(alpha|beta)$") == [j1, j2, j3, j6]
    assert filtered(client, "package_name~e.a$") == [j3, j6]


def test_booleans_in_any_case(client: TestClient) -> None:
    sleeper = package(client, "sleeper", command=["sleep", "30"])
    waiting = pending(client, sleeper["id"])
    running = int(launch(client, package_id=sleeper["id"])["id"])
    try:
        wait_for(client, str(running), {"running"} | TERMINAL)
        assert client.get(f"{JOBS}{running}/").json()["data"]["status"] == "running"

        for word in ("false", "False", "FALSE"):
            assert filtered(client, f"active={word}") == [waiting], word
        for word in ("true", "True"):
            assert filtered(client, f"active={word}") == [running], word
        assert filtered(client, "active!=true") == [waiting]
        assert filtered(client, "automatic=false") == [waiting, running]
    finally:
        client.post(f"{JOBS}{running}/cancel/")
        wait_for(client, str(running))


# Filters on arrays ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["tags", "options.tags"])
def test_array_operators_on_tags(client: TestClient, tagged: dict[str, int], field: str) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert filtered(client, f"{field}@>{{a,b}}") == [j1, j4]
    assert filtered(client, f"{field}@>{{b,a}}") == [j1, j4]
    assert filtered(client, f"{field}@>{{c}}") == [j3, j4]
    assert filtered(client, f"{field}@>{{}}") == [j1, j2, j3, j4, j5, j6]
    assert filtered(client, f"{field}<@{{a,b}}") == [j1, j2, j5, j6]
    assert filtered(client, f"{field}<@{{}}") == [j5, j6]
    assert filtered(client, f"{field}&&{{c,z}}") == [j3, j4]
    assert filtered(client, f"{field}&&{{a}}") == [j1, j2, j4]
    assert filtered(client, f"{field}&&{{z}}") == []
    assert filtered(client, f"{field}={{a,b}}") == [j1]
    assert filtered(client, f"{field}={{b,a}}") == [j1]
    assert filtered(client, f"{field}={{}}") == [j5, j6]
    assert filtered(client, f"{field}!={{a,b}}") == [j2, j3, j4, j5, j6]


def test_tags_are_reported_in_options(client: TestClient, tagged: dict[str, int]) -> None:
    jobs = {int(j["id"]): j for j in listing(client, JOBS)["data"]}

    assert jobs[tagged["j1"]]["options"]["tags"] == ["a", "b"]
    assert jobs[tagged["j5"]]["options"]["tags"] == []
    assert jobs[tagged["j6"]]["options"]["tags"] == []


# Combining, sorting, detail ---------------------------------------------------------------


def test_filters_combine_with_and_unless_type_is_union(
    client: TestClient, tagged: dict[str, int]
) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()
    pair = (f"id={j1}", "package_name=beta")

    assert filtered(client, *pair) == []
    assert filtered(client, *pair, type="inter") == []
    assert filtered(client, *pair, type="union") == [j1, j3, j6]
    assert filtered(client, "tags&&{a}", "package_name=alpha") == [j1, j2]
    assert filtered(client, "tags&&{a}", "package_name~^[bx]", type="union") == [
        j1,
        j2,
        j3,
        j4,
        j5,
        j6,
    ]
    assert filtered(client, "tags&&{a}", "package_name~^[bx]", type="inter") == [j4]
    # `type` applies to the packages list too.
    assert len(filtered(client, "name=alpha", "name=beta", path=PACKAGES, type="union")) == 2
    assert filtered(client, "name=alpha", "name=beta", path=PACKAGES) == []


def test_multi_key_sort(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert ids(client, [("sort", "-package_name,+id")]) == [j4, j5, j3, j6, j1, j2]
    assert ids(client, [("sort", "-package_name,-id")]) == [j5, j4, j6, j3, j2, j1]
    assert ids(client, [("sort", "package_name,-id")]) == [j2, j1, j6, j3, j5, j4]
    assert ids(client, [("sort", "-created")]) == [j6, j5, j4, j3, j2, j1]
    assert ids(client, [("sort", "+created")]) == [j1, j2, j3, j4, j5, j6]
    assert ids(client, [("sort", "-id")]) == [j6, j5, j4, j3, j2, j1]
    # A literal "+" in a query string decodes to a space: still ascending.
    assert ids(client, "?sort=-package_name,+id") == [j4, j5, j3, j6, j1, j2]


def test_ties_follow_the_direction_of_the_last_sort_key(
    client: TestClient, tagged: dict[str, int]
) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert ids(client, [("sort", "package_name")]) == [j1, j2, j3, j6, j4, j5]
    assert ids(client, [("sort", "-package_name")]) == [j5, j4, j6, j3, j2, j1]
    assert ids(client, [("sort", "-status")]) == [j6, j5, j4, j3, j2, j1]


def test_a_job_whose_package_is_gone_sorts_as_package_id_zero(client: TestClient) -> None:
    kept = package(client, "kept", command=["true"])["id"]
    gone = package(client, "gone", command=["true"])["id"]
    first, orphan, last = pending(client, kept), pending(client, gone), pending(client, kept)
    assert client.post(f"{JOBS}{orphan}/cancel/").status_code == 200
    assert client.delete(f"{PACKAGES}{gone}/").status_code == 204
    assert client.get(f"{JOBS}{orphan}/").json()["data"]["package_id"] == "0"

    assert ids(client, [("sort", "package_id")]) == [orphan, first, last]
    assert ids(client, [("sort", "-package_id")]) == [last, first, orphan]
    assert ids(client, [("sort", "package_id"), ("limit", "1"), ("page", "2")]) == [first]


def test_sort_and_paging_together(client: TestClient, tagged: dict[str, int]) -> None:
    j1, j2, j3, j4, j5, j6 = tagged.values()
    query = [("sort", "-package_name,+id"), ("limit", "4")]

    assert ids(client, [*query, ("page", "1")]) == [j4, j5, j3, j6]
    assert ids(client, [*query, ("page", "2")]) == [j1, j2]


def test_packages_sort_and_filter_like_the_client(client: TestClient) -> None:
    first = package(client, "example", command=["true"], tags=["nightly", "smoke"])
    second = package(client, "zeta", command=["true"], tags=["nightly"])
    third = package(client, "middle", command=["true"], tags=[])
    a, b, c = int(first["id"]), int(second["id"]), int(third["id"])

    assert filtered(client, "name=example", path=PACKAGES) == [a]
    assert filtered(client, f"id>={b}", path=PACKAGES) == [b, c]
    assert filtered(client, "tags@>{nightly}", path=PACKAGES) == [a, b]
    assert filtered(client, "tags@>{nightly,smoke}", path=PACKAGES) == [a]
    assert ids(client, [("sort", "+name")], PACKAGES) == [a, c, b]
    assert ids(client, [("sort", "-name")], PACKAGES) == [b, c, a]
    # get_by_name(): list(filter="name=<n>", limit=1, detailed=True)
    found = listing(
        client, PACKAGES, [("filter", "name=zeta"), ("limit", "1"), ("detailed", "True")]
    )
    assert [p["name"] for p in found["data"]] == ["zeta"]


def test_packages_accept_the_use_as_testlist_filter(client: TestClient) -> None:
    """The real client's tests filter packages with `use_as_testlist!=true`."""
    made = [int(package(client, n, command=["true"])["id"]) for n in ("one", "two")]

    assert filtered(client, "use_as_testlist!=true", path=PACKAGES) == made
    assert filtered(client, "use_as_testlist=true", path=PACKAGES) == []


@pytest.mark.parametrize("word", ["True", "true", "False", "false", "1", "0"])
def test_detailed_gives_the_same_jobs(
    client: TestClient, tagged: dict[str, int], word: str
) -> None:
    plain = listing(client, JOBS)["data"]
    detailed = listing(client, JOBS, [("detailed", word)])["data"]

    assert [j["id"] for j in detailed] == [j["id"] for j in plain]
    for job in detailed:
        for key in (
            "id",
            "status",
            "active",
            "options",
            "package_id",
            "package_name",
            "created",
            "run_at",
            "interfaces",
            "interface_names",
        ):
            assert key in job, key
        assert job["options"] is not None


def test_query_string_as_the_cdrouter_client_encodes_it(client: TestClient) -> None:
    xy = package(client, "x y", command=["true"])["id"]
    other = package(client, "x", command=["true"])["id"]
    wanted = [pending(client, xy, ["a", "b", "z"]) for _ in range(5)]
    pending(client, xy, ["a"])  # lacks b
    pending(client, other, ["a", "b"])  # another package

    raw = (
        "?filter=tags%40%3E%7Ba%2Cb%7D&filter=package_name%3Dx+y"
        "&sort=-id%2C%2Bcreated&limit=2&page=3&detailed=True"
    )
    body = listing(client, JOBS, raw)

    assert [int(j["id"]) for j in body["data"]] == [wanted[0]]
    links = body["links"]
    assert links["total"] == 5
    assert links["last"] == 3
    assert links["current"] == 3
    assert links["limit"] == 2
    assert links["prev"] == 2
    assert "next" not in links
    page_one = listing(client, JOBS, raw.replace("page=3", "page=1"))
    assert [int(j["id"]) for j in page_one["data"]] == [wanted[4], wanted[3]]
    assert page_one["links"]["next"] == 2


def test_client_style_encoding_of_every_operator(
    client: TestClient, tagged: dict[str, int]
) -> None:
    """Operators percent-escaped the way requests does it (`&&` must not split the query)."""
    j1, j2, j3, j4, j5, j6 = tagged.values()

    assert ids(client, "?filter=tags%26%26%7Bc%7D&limit=none") == [j3, j4]
    assert ids(client, "?filter=tags%3C%40%7Ba%7D&limit=none") == [j2, j5, j6]
    assert ids(client, f"?filter=id%3E%3D{j5}&limit=none") == [j5, j6]
    assert ids(client, f"?filter=id%21%3D{j1}&filter=id%3C%3D{j3}") == [j2, j3]
    assert ids(client, "?filter=package_name%7E%2A%5EALPHA%24") == [j1, j2]
    assert ids(client, "?filter=package_name%21%7E%2Aa&sort=%2Bid") == [j4, j5]
    assert ids(client, "?filter=active%3DFalse&filter=id%3D1&type=union&sort=-id") == [
        j6,
        j5,
        j4,
        j3,
        j2,
        j1,
    ]


def test_created_job_is_visible_in_a_listing_filtered_by_its_own_created(
    client: TestClient,
) -> None:
    pkg = package(client, command=["true"])
    job = launch(client, package_id=pkg["id"], run_at=FUTURE)
    config = create(client, "configs", {"name": "c"})

    assert filtered(client, f"created={job['created']}") == [int(job["id"])]
    assert filtered(client, f"created={config['created']}", path="/api/v1/configs/") == [
        int(config["id"])
    ]


def test_an_id_one_of_a_set(client: TestClient) -> None:
    """`<@` on a number: the value is one of a set (`package_id<@{3,7}`), indexed or not."""
    made = (package(client, f"one-of-{n}", command=["true"]) for n in range(3))
    first, second, third = (p["id"] for p in made)
    jobs = {p: pending(client, p) for p in (first, second, third)}
    assert filtered(client, f"package_id<@{{{first},{third}}}") == [jobs[first], jobs[third]]
    assert filtered(client, f"id<@{{{jobs[second]},{jobs[third]}}}") == [
        jobs[second],
        jobs[third],
    ]
    assert filtered(client, "package_id<@{}") == []
    assert filtered(client, f"package_id<@{{{second}}}", "status=pending") == [jobs[second]]
    refused = client.get(JOBS, params={"filter": "package_id<@{1,x}"})
    assert refused.status_code == 400
    assert "expected a 64-bit integer" in refused.json()["error"]
