"""The published `cdrouter` client (0.9.10, unchanged) drives a real jobyard server.

Everything the client's jobs resource offers goes over real HTTP to a live uvicorn server with
embedded workers, on both databases. Packages and configs are created through the native API
with plain `requests`: the client's own package shape is CDRouter's, not ours.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cdrouter import CDRouter
from cdrouter.cdrouter import CDRouterError
from cdrouter.configs import Interfaces
from cdrouter.filters import Field
from cdrouter.jobs import Job, Options

from tests.conftest import ADMIN_TOKEN, AUTH, LiveServer

FAR_FUTURE = datetime(9999, 1, 1, 12, 0, tzinfo=UTC)
HTTP_OK = 200


# Helpers ----------------------------------------------------------------------------------


class Native:
    """Plain `requests` against the native API, for what the client cannot create."""

    def __init__(self, server: LiveServer) -> None:
        self.base = server.url + "/api/v1"
        self.session = requests.Session()
        self.session.headers.update(AUTH)

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.session.post(f"{self.base}/{resource}/", json=body, timeout=30)
        assert response.status_code == HTTP_OK, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def package(self, name: str, **fields: Any) -> int:
        body = {"name": name, "command": ["echo", "hello"]} | fields
        return int(self.create("packages", body)["id"])

    def external(self, name: str, **fields: Any) -> int:
        """A package whose jobs no worker runs: they stay pending, whatever their run_at."""
        body = {"name": name, "kind": "external"} | fields
        return int(self.create("packages", body)["id"])

    def config(self, name: str, testvars: dict[str, str] | None = None) -> int:
        body = {
            "name": name,
            "testvars": testvars or {"lanInterface": "eth1"},
            "interfaces": [
                {"name": "lan", "value": "{lanInterface}", "is_wireless": False, "is_ics": False},
                {"name": "wlan", "value": "wifi0", "is_wireless": True, "is_ics": False},
            ],
        }
        return int(self.create("configs", body)["id"])

    def cancel(self, job_id: int) -> None:
        response = self.session.post(f"{self.base}/jobs/{job_id}/cancel/", timeout=30)
        assert response.status_code == HTTP_OK, response.text


@pytest.fixture
def native(live_server: LiveServer) -> Iterator[Native]:
    api = Native(live_server)
    yield api
    api.session.close()


@pytest.fixture
def cdr(live_server: LiveServer) -> CDRouter:
    return CDRouter(live_server.url, token=ADMIN_TOKEN)


def later(package_id: int, **fields: Any) -> Job:
    """A job to launch that stays pending: it is due in the year 9999."""
    return Job(package_id=package_id, run_at=FAR_FUTURE, **fields)


def assert_aware(value: Any) -> None:
    assert isinstance(value, datetime), value
    assert value != datetime.min
    assert value.tzinfo is not None, value
    assert value.utcoffset() is not None, value


def assert_job_types(job: Job) -> None:
    """What the client loaded has the types the real API gives: ints, aware datetimes."""
    assert isinstance(job, Job)
    for name in ("id", "package_id", "config_id", "device_id", "user_id"):
        value = getattr(job, name)
        assert type(value) is int, (name, value)
    assert job.id > 0
    assert job.result_id is None or isinstance(job.result_id, int)
    for name in ("created", "updated", "run_at"):
        assert_aware(getattr(job, name))
    for name in ("active", "automatic", "uses_wireless", "uses_ics"):
        assert isinstance(getattr(job, name), bool), name
    for name in ("status", "package_name", "config_name", "device_name"):
        assert isinstance(getattr(job, name), str), name
    assert isinstance(job.options, Options)
    assert isinstance(job.options.begin_at, str)
    assert isinstance(job.options.end_at, str)
    assert isinstance(job.options.extra_cli_args, str)
    assert isinstance(job.interfaces, list)
    assert all(isinstance(i, Interfaces) for i in job.interfaces)
    assert job.interface_names == [i.value for i in job.interfaces]
    assert job.active is (job.status == "running")


def ids(jobs: list[Job]) -> list[int]:
    return [j.id for j in jobs]


def wait_for_status(cdr: CDRouter, job_id: int, status: str, timeout: float = 15.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = cdr.jobs.get(job_id)
        if job.status == status:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}"
        time.sleep(0.05)


# Listing ----------------------------------------------------------------------------------


def test_list_on_an_empty_server_is_empty(cdr: CDRouter) -> None:
    page = cdr.jobs.list()

    assert page.data == []
    assert page.links.total == 0
    assert page.links.next is None
    assert list(cdr.jobs.iter_list()) == []


def test_launch_get_and_the_types_the_client_loads(cdr: CDRouter, native: Native) -> None:
    config_id = native.config("lab")
    package_id = native.package("one", config_id=config_id)

    launched = cdr.jobs.launch(
        later(
            package_id,
            options=Options(
                tags=["one", "two"],
                skip_tests=["cdrouter_basic_1", "cdrouter_basic_10"],
                begin_at="cdrouter_nat_1",
                end_at="cdrouter_nat_2",
                extra_cli_args="-testvar lanInterface=eth7",
            ),
        )
    )

    assert_job_types(launched)
    assert launched.status == "pending"
    assert launched.active is False
    assert launched.automatic is False
    assert launched.result_id is None
    assert launched.package_id == package_id
    assert launched.package_name == "one"
    assert launched.config_name == "lab"  # the package's config, inherited
    assert launched.run_at == FAR_FUTURE
    assert launched.options.tags == ["one", "two"]
    assert launched.options.skip_tests == ["cdrouter_basic_1", "cdrouter_basic_10"]
    assert launched.options.begin_at == "cdrouter_nat_1"
    assert launched.options.end_at == "cdrouter_nat_2"
    assert launched.options.extra_cli_args == "-testvar lanInterface=eth7"
    assert launched.interface_names == ["eth7", "wifi0"]
    assert [i.is_wireless for i in launched.interfaces] == [False, True]
    assert launched.uses_wireless is True
    assert launched.uses_ics is False

    fetched = cdr.jobs.get(launched.id)
    assert_job_types(fetched)
    assert fetched.id == launched.id
    assert fetched.status == "pending"
    assert fetched.created == launched.created
    assert fetched.run_at == FAR_FUTURE
    assert fetched.options.tags == ["one", "two"]
    assert fetched.interface_names == ["eth7", "wifi0"]


def test_list_filters_sorts_and_pages(cdr: CDRouter, native: Native) -> None:
    alpha = native.package("alpha")
    beta = native.package("beta")
    launched = [cdr.jobs.launch(later(alpha if n % 2 else beta)) for n in range(7)]
    all_ids = ids(launched)

    by_default = cdr.jobs.list()
    assert ids(by_default.data) == all_ids  # ascending id when no sort is given
    assert by_default.links.total == len(all_ids)
    assert by_default.links.limit == 25
    assert by_default.links.next is None
    for job in by_default.data:
        assert_job_types(job)

    second = cdr.jobs.list(limit=2, page=2)
    assert ids(second.data) == all_ids[2:4]
    assert (second.links.current, second.links.total, second.links.limit) == (2, 7, 2)
    assert (second.links.first, second.links.last) == (1, 4)
    assert (second.links.prev, second.links.next) == (1, 3)
    last = cdr.jobs.list(limit=2, page=4)
    assert ids(last.data) == all_ids[6:]
    assert last.links.next is None
    assert last.links.prev == 3

    newest_first = cdr.jobs.list(sort=["-id", "+created"], detailed=True)
    assert ids(newest_first.data) == all_ids[::-1]
    by_package = cdr.jobs.list(sort=["+package_name", "-id"], limit="none")
    betas = [j.id for j in launched if j.package_name == "beta"]
    alphas = [j.id for j in launched if j.package_name == "alpha"]
    assert ids(by_package.data) == sorted(alphas, reverse=True) + sorted(betas, reverse=True)

    only_alpha = cdr.jobs.list(filter=["package_name=alpha"], limit=100, detailed=False)
    assert ids(only_alpha.data) == alphas
    inter = cdr.jobs.list(
        filter=[f"id>={all_ids[1]}", "package_name=beta"], type="inter", sort=["-id"]
    )
    assert ids(inter.data) == sorted((i for i in betas if i >= all_ids[1]), reverse=True)
    union = cdr.jobs.list(filter=[f"id={all_ids[0]}", f"id={all_ids[-1]}"], type="union")
    assert ids(union.data) == [all_ids[0], all_ids[-1]]
    nothing = cdr.jobs.list(filter=["package_name=nobody"])
    assert nothing.data == []
    assert nothing.links.total == 0


def test_iter_list_walks_every_page_once_and_stops(cdr: CDRouter, native: Native) -> None:
    package_id = native.package("pages")
    launched = cdr.jobs.bulk_launch(jobs=[later(package_id) for _ in range(7)])
    assert len(launched) == 7

    # A server that never ends the walk (next never null) would loop: stop it at a bound.
    walked = list(itertools.islice(cdr.jobs.iter_list(limit=2), 50))
    assert sorted(ids(walked)) == sorted(ids(launched))
    assert len(set(ids(walked))) == len(walked)

    backwards = list(itertools.islice(cdr.jobs.iter_list(limit=3, sort=["-id"]), 50))
    assert ids(backwards) == sorted(ids(launched), reverse=True)

    some = list(itertools.islice(cdr.jobs.iter_list(filter=["active=false"], limit=5), 50))
    assert sorted(ids(some)) == sorted(ids(launched))


def test_every_filter_operator_through_field(cdr: CDRouter, native: Native) -> None:
    dhcp = native.package("DHCP-server")
    nat = native.package("nat")
    first = cdr.jobs.launch(later(dhcp, options=Options(tags=["red", "nightly"])))
    second = cdr.jobs.launch(later(dhcp, options=Options(tags=["blue"])))
    third = cdr.jobs.launch(later(nat, options=Options(tags=["red", "blue", "green"])))
    fourth = cdr.jobs.launch(later(nat))

    def found(*conditions: Field | str, kind: str | None = None) -> list[int]:
        page = cdr.jobs.list(filter=list(conditions), type=kind, limit="none")
        return ids(page.data)

    mid = second.id
    assert found(Field("id").eq(mid)) == [mid]
    assert found(Field("id").ne(mid)) == [first.id, third.id, fourth.id]
    assert found(Field("id").lt(mid)) == [first.id]
    assert found(Field("id").le(mid)) == [first.id, mid]
    assert found(Field("id").gt(mid)) == [third.id, fourth.id]
    assert found(Field("id").ge(mid)) == [mid, third.id, fourth.id]
    assert found(Field("id").not_().lt(mid)) == [mid, third.id, fourth.id]  # `>=`
    assert found(Field("active").eq(False)) == ids([first, second, third, fourth])
    assert found(Field("active").eq(True)) == []

    assert found(Field("package_name").match("^DHCP")) == [first.id, second.id]
    assert found(Field("package_name").match("^dhcp")) == []
    assert found(Field("package_name").match("^dhcp", ignorecase=True)) == [first.id, second.id]
    assert found(Field("package_name").not_().match("^DHCP")) == [third.id, fourth.id]
    assert found(Field("package_name").not_().match("^dhcp")) == ids([first, second, third, fourth])
    assert found(Field("package_name").not_().match("^dhcp", ignorecase=True)) == [
        third.id,
        fourth.id,
    ]

    assert found(Field("tags").contains("red")) == [first.id, third.id]
    assert found(Field("tags").contains("red", "blue")) == [third.id]
    assert found(Field("options", "tags").contains("red", "blue")) == [third.id]
    assert found(Field("tags").contained_by("red", "blue")) == [second.id, fourth.id]
    assert found(Field("tags").contained_by("red", "nightly")) == [first.id, fourth.id]
    assert found(Field("tags").overlaps("nightly", "green")) == [first.id, third.id]
    assert found(Field("tags").overlaps("yellow")) == []

    assert found(Field("tags").contains("red"), Field("package_name").eq("nat")) == [third.id]
    assert found(
        Field("tags").contains("nightly"), Field("package_name").eq("nat"), kind="union"
    ) == [first.id, third.id, fourth.id]


def test_a_bad_filter_is_a_client_error_naming_it(cdr: CDRouter) -> None:
    with pytest.raises(CDRouterError) as caught:
        cdr.jobs.list(filter=["no_such_field=1"])

    assert caught.value.response.status_code == 400
    assert "no_such_field" in str(caught.value)


# Launch, edit, delete ---------------------------------------------------------------------


def test_edit_changes_the_config(cdr: CDRouter, native: Native) -> None:
    first = native.config("first", {"lanInterface": "eth1"})
    second = native.config("second", {"lanInterface": "eth5"})
    package_id = native.package("edited")
    job = cdr.jobs.launch(later(package_id, config_id=first))
    assert (job.config_id, job.config_name) == (first, "first")
    assert job.interface_names == ["eth1", "wifi0"]

    job.config_id = second
    edited = cdr.jobs.edit(job)

    assert_job_types(edited)
    assert edited.id == job.id
    assert (edited.config_id, edited.config_name) == (second, "second")
    assert edited.interface_names == ["eth5", "wifi0"]
    assert edited.status == "pending"
    assert edited.run_at == FAR_FUTURE
    again = cdr.jobs.get(job.id)
    assert (again.config_id, again.config_name) == (second, "second")
    assert again.updated >= job.updated


def test_delete_then_get_is_no_such_job(cdr: CDRouter, native: Native) -> None:
    job = cdr.jobs.launch(later(native.package("doomed")))

    cdr.jobs.delete(job.id)

    with pytest.raises(CDRouterError) as caught:
        cdr.jobs.get(job.id)
    assert str(caught.value) == "no such Job"
    assert caught.value.response.status_code == 404
    with pytest.raises(CDRouterError) as again:
        cdr.jobs.delete(job.id)
    assert again.value.response.status_code == 404


def test_get_interfaces_renders_the_config_without_launching(cdr: CDRouter, native: Native) -> None:
    package_id = native.package("ifaces", config_id=native.config("ifaces"))

    found = cdr.jobs.get_interfaces(
        Job(package_id=package_id, options=Options(extra_cli_args="-testvar lanInterface=eth2"))
    )

    assert all(isinstance(i, Interfaces) for i in found)
    assert [(i.value, i.is_wireless, i.is_ics) for i in found] == [
        ("eth2", False, False),
        ("wifi0", True, False),
    ]
    assert [i.name for i in found] == ["lan", "wlan"]
    plain = cdr.jobs.get_interfaces(Job(package_id=package_id))
    assert [i.value for i in plain] == ["eth1", "wifi0"]
    assert cdr.jobs.list().data == []  # nothing was launched


# Bulk operations --------------------------------------------------------------------------


def test_bulk_launch_a_list_of_jobs(cdr: CDRouter, native: Native) -> None:
    red = native.package("red")
    blue = native.package("blue")

    launched = cdr.jobs.bulk_launch(
        jobs=[
            later(red, options=Options(tags=["red"])),
            later(blue, options=Options(tags=["blue"])),
        ]
    )

    assert [j.package_name for j in launched] == ["red", "blue"]
    assert [j.options.tags for j in launched] == [["red"], ["blue"]]
    for job in launched:
        assert_job_types(job)
        assert job.status == "pending"
        assert job.run_at == FAR_FUTURE
    assert ids(cdr.jobs.list().data) == ids(launched)


def test_bulk_launch_by_package_filter_and_all(cdr: CDRouter, native: Native) -> None:
    native.external("dhcp-a", tags=["working"])
    native.external("dhcp-b")
    native.external("other", tags=["working"])

    by_name = cdr.jobs.bulk_launch(
        filter=["name=dhcp-a"], _fields=Job(options=Options(tags=["monday"]))
    )
    assert [j.package_name for j in by_name] == ["dhcp-a"]
    assert by_name[0].options.tags == ["monday"]
    assert_job_types(by_name[0])

    by_two = cdr.jobs.bulk_launch(filter=[Field("name").match("^dhcp"), "tags@>{working}"])
    assert [j.package_name for j in by_two] == ["dhcp-a"]
    either = cdr.jobs.bulk_launch(filter=["name=dhcp-b", "name=other"], type="union")
    assert sorted(j.package_name for j in either) == ["dhcp-b", "other"]

    everything = cdr.jobs.bulk_launch(all=True, _fields=Job(options=Options(tags=["all"])))
    assert sorted(j.package_name for j in everything) == ["dhcp-a", "dhcp-b", "other"]
    assert all(j.options.tags == ["all"] for j in everything)

    total = len(by_name) + len(by_two) + len(either) + len(everything)
    assert cdr.jobs.list().links.total == total
    with pytest.raises(CDRouterError) as caught:
        cdr.jobs.bulk_launch()  # no jobs, no filter, all=False: nothing chosen
    assert caught.value.response.status_code == 400


def test_bulk_delete_by_ids_filter_and_all_spares_running_jobs(
    cdr: CDRouter, native: Native
) -> None:
    keep = native.external("keep")
    dns = native.external("dns")
    sleeper = native.package("sleeper", command=["sleep", "30"])
    running = cdr.jobs.launch(Job(package_id=sleeper))
    kept = cdr.jobs.bulk_launch(jobs=[Job(package_id=keep) for _ in range(4)])
    doomed_by_filter = cdr.jobs.bulk_launch(jobs=[Job(package_id=dns) for _ in range(2)])
    wait_for_status(cdr, running.id, "running")

    cdr.jobs.bulk_delete(ids=[kept[0].id, kept[1].id])
    left = ids(cdr.jobs.list(sort=["+id"]).data)
    assert left == [running.id, kept[2].id, kept[3].id, *ids(doomed_by_filter)]

    cdr.jobs.bulk_delete(filter=["package_name=dns"])
    left = ids(cdr.jobs.list(sort=["+id"]).data)
    assert left == [running.id, kept[2].id, kept[3].id]

    cdr.jobs.bulk_delete(all=True)
    survivors = cdr.jobs.list().data
    assert ids(survivors) == [running.id]
    assert survivors[0].status == "running"
    assert survivors[0].active is True
    with pytest.raises(CDRouterError) as caught:
        cdr.jobs.get(kept[2].id)
    assert str(caught.value) == "no such Job"

    native.cancel(running.id)
    wait_for_status(cdr, running.id, "cancelled")


# Errors -----------------------------------------------------------------------------------


def test_a_bad_token_is_a_401_invalid_token(live_server: LiveServer) -> None:
    stranger = CDRouter(live_server.url, token="not-a-token")

    with pytest.raises(CDRouterError) as caught:
        stranger.jobs.list()

    assert caught.value.response.status_code == 401
    assert str(caught.value) == "invalid token"
    with pytest.raises(CDRouterError) as launching:
        stranger.jobs.launch(later(1))
    assert launching.value.response.status_code == 401


def test_launching_an_unknown_package_is_a_client_error(cdr: CDRouter) -> None:
    with pytest.raises(CDRouterError) as caught:
        cdr.jobs.launch(later(987654))

    status = caught.value.response.status_code
    assert 400 <= status < 500
    assert status not in {401, 403, 405}
    assert str(caught.value) == "no such package"
    assert cdr.jobs.list().data == []


# A job that really runs -------------------------------------------------------------------


def test_a_job_runs_and_the_client_sees_its_result(cdr: CDRouter, native: Native) -> None:
    package_id = native.package("echo", command=["echo", "hello {who}"], env={})
    config_id = native.config("who", {"who": "world", "lanInterface": "eth3"})

    job = cdr.jobs.launch(Job(package_id=package_id, config_id=config_id))
    assert job.status == "pending"
    assert job.result_id is None
    assert abs((job.run_at - job.created).total_seconds()) < 1  # run now

    deadline = time.monotonic() + 20
    while True:
        current = cdr.jobs.get(job.id)
        if current.result_id is not None and current.status not in {"pending", "running"}:
            break
        assert time.monotonic() < deadline, f"job {job.id} is still {current.status}"
        time.sleep(0.05)

    assert_job_types(current)
    assert current.status == "completed"
    assert current.active is False
    assert isinstance(current.result_id, int)
    assert current.result_id > 0
    assert current.updated >= current.created
    assert current.interface_names == ["eth3", "wifi0"]
    done = cdr.jobs.list(filter=["status=completed"]).data
    assert ids(done) == [job.id]
    log = native.session.get(f"{native.base}/jobs/{job.id}/log/", timeout=30).json()["data"]
    assert log["content"] == "hello world\n"
