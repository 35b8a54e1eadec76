"""Every operation of the native API as a `Call`: what to send and how to read the answer,
with no I/O (the sync and async clients send the same calls). `OPERATIONS` maps each
(method, path) of `/api/v1` to the call that makes it; a test holds it against the server's
OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from jobyard.client import models
from jobyard.client.errors import JobyardClientError, error_for

T = TypeVar("T")
Data = dict[str, Any]
Params = list[tuple[str, str]]
# Methods that change nothing, or land in the same state when repeated: retried when the
# server could not be reached. A launch or an append is never sent twice.
SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE", "PUT"})


@dataclass(frozen=True)
class Page:
    """One page of a list, and where it stands in the whole."""

    items: list[Data]
    total: int
    current: int
    last: int


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        content = None if self.body is None else json.dumps(self.body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        return client.build_request(
            self.method,
            self.path,
            params=tuple(self.params),
            content=content,
            headers={**headers, **self.headers},
        )


def problem_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:  # noqa: PLR2004
        raise error_for(response.status_code, problem_of(response), response.reason_phrase)
    return response


def _data(response: httpx.Response) -> Any:
    return checked(response).json()["data"]


def _nothing(response: httpx.Response) -> None:
    checked(response)


def _page(response: httpx.Response) -> Page:
    body = checked(response).json()
    links = body.get("links", {})
    return Page(body["data"], int(links.get("total", 0)), links.get("current", 0), links["last"])


@dataclass(frozen=True)
class LogPiece:
    """A stretch of a log, where the next read starts, and whether the log is all there."""

    text: str
    next_offset: int
    complete: bool


def _log_piece(response: httpx.Response) -> LogPiece:
    checked(response)
    headers = response.headers
    complete = headers.get("X-Complete", "False") == "True"
    return LogPiece(response.text, int(headers.get("X-Next-Offset", "0")), complete)


OPERATIONS: dict[tuple[str, str], str] = {}  # (method, path template) -> Calls method name


F = TypeVar("F", bound=Callable[..., Any])


def operation(method: str, template: str) -> Callable[[F], F]:
    """Records which operation of the API a `Calls` method makes."""

    def record(function: F) -> F:
        OPERATIONS[(method, template)] = function.__name__
        return function

    return record


def list_params(
    filters: Sequence[str] = (),
    sort: str | None = None,
    *,
    limit: int | str | None = None,
    page: int | None = None,
    union: bool = False,
) -> Params:
    params: Params = [("filter", f) for f in filters]
    if union:
        params.append(("type", "union"))
    if sort:
        params.append(("sort", sort))
    if limit is not None:
        params.append(("limit", str(limit)))
    if page is not None:
        params.append(("page", str(page)))
    return params


def _id(value: int | str) -> str:
    text = str(value)
    if not text.isdigit():
        raise JobyardClientError(f"not an id: {text!r}")
    return text


class Calls:
    """The calls of the native API, one method each; `customer` acts for that customer (a
    system admin's choice) on every call."""

    def __init__(self, customer: int | None = None) -> None:
        self.headers = {"Customer-Id": str(customer)} if customer else {}

    def _call(
        self, method: str, path: str, read: Callable[[httpx.Response], T], **more: Any
    ) -> Call[T]:
        return Call(method, "/api/v1" + path, read, headers=self.headers, **more)

    # Catalog: packages, devices, configs ------------------------------------------------

    def _list(self, kind: str, params: Params) -> Call[Page]:
        return self._call("GET", f"/{kind}/", _page, params=params)

    def _create(self, kind: str, values: Data) -> Call[Any]:
        return self._call("POST", f"/{kind}/", _data, body=values)

    def _get(self, kind: str, object_id: int | str) -> Call[Any]:
        return self._call("GET", f"/{kind}/{_id(object_id)}/", _data)

    def _edit(self, kind: str, object_id: int | str, values: Data) -> Call[Any]:
        return self._call("PATCH", f"/{kind}/{_id(object_id)}/", _data, body=values)

    def _delete(self, kind: str, object_id: int | str) -> Call[None]:
        return self._call("DELETE", f"/{kind}/{_id(object_id)}/", _nothing)

    @operation("GET", "/api/v1/packages/")
    def list_packages(self, params: Params) -> Call[Page]:
        return self._list("packages", params)

    @operation("POST", "/api/v1/packages/")
    def create_package(self, values: Data) -> Call[models.Package]:
        return self._create("packages", values)

    @operation("GET", "/api/v1/packages/{id}/")
    def get_package(self, package_id: int | str) -> Call[models.Package]:
        return self._get("packages", package_id)

    @operation("PATCH", "/api/v1/packages/{id}/")
    def edit_package(self, package_id: int | str, values: Data) -> Call[models.Package]:
        return self._edit("packages", package_id, values)

    @operation("DELETE", "/api/v1/packages/{id}/")
    def delete_package(self, package_id: int | str) -> Call[None]:
        return self._delete("packages", package_id)

    @operation("GET", "/api/v1/devices/")
    def list_devices(self, params: Params) -> Call[Page]:
        return self._list("devices", params)

    @operation("POST", "/api/v1/devices/")
    def create_device(self, values: Data) -> Call[models.Device]:
        return self._create("devices", values)

    @operation("GET", "/api/v1/devices/{id}/")
    def get_device(self, device_id: int | str) -> Call[models.Device]:
        return self._get("devices", device_id)

    @operation("PATCH", "/api/v1/devices/{id}/")
    def edit_device(self, device_id: int | str, values: Data) -> Call[models.Device]:
        return self._edit("devices", device_id, values)

    @operation("DELETE", "/api/v1/devices/{id}/")
    def delete_device(self, device_id: int | str) -> Call[None]:
        return self._delete("devices", device_id)

    @operation("GET", "/api/v1/configs/")
    def list_configs(self, params: Params) -> Call[Page]:
        return self._list("configs", params)

    @operation("POST", "/api/v1/configs/")
    def create_config(self, values: Data) -> Call[models.Config]:
        return self._create("configs", values)

    @operation("GET", "/api/v1/configs/{id}/")
    def get_config(self, config_id: int | str) -> Call[models.Config]:
        return self._get("configs", config_id)

    @operation("PATCH", "/api/v1/configs/{id}/")
    def edit_config(self, config_id: int | str, values: Data) -> Call[models.Config]:
        return self._edit("configs", config_id, values)

    @operation("DELETE", "/api/v1/configs/{id}/")
    def delete_config(self, config_id: int | str) -> Call[None]:
        return self._delete("configs", config_id)

    # Jobs ---------------------------------------------------------------------------------

    @operation("GET", "/api/v1/jobs/")
    def list_jobs(self, params: Params) -> Call[Page]:
        return self._list("jobs", params)

    @operation("POST", "/api/v1/jobs/")
    def launch(self, request: Data) -> Call[models.Job]:
        """One job: `{"package_id": "3", "options": {"tags": [...]}, ...}` (docs/api.md)."""
        return self._call("POST", "/jobs/", _data, body=request)

    def bulk_launch(self, requests: Sequence[Data]) -> Call[list[models.Job]]:
        body = {"jobs": list(requests)}
        return self._call("POST", "/jobs/", _data, params=[("bulk", "launch")], body=body)

    def bulk_delete(
        self, job_ids: Sequence[int | str] = (), filters: Sequence[str] = ()
    ) -> Call[None]:
        params: Params = [("bulk", "delete"), *(("filter", f) for f in filters)]
        body = {"jobs": [{"id": _id(i)} for i in job_ids]} if job_ids else None
        return self._call("POST", "/jobs/", _nothing, params=params, body=body)

    def interfaces(self, request: Data) -> Call[list[models.Interface]]:
        """The interfaces a launch would use, without launching."""
        params: Params = [("process", "interfaces")]
        return self._call("POST", "/jobs/", _data, params=params, body=request)

    @operation("GET", "/api/v1/jobs/{id}/")
    def get_job(self, job_id: int | str) -> Call[models.Job]:
        return self._call("GET", f"/jobs/{_id(job_id)}/", _data)

    @operation("PATCH", "/api/v1/jobs/{id}/")
    def edit_job(self, job_id: int | str, values: Data) -> Call[models.Job]:
        return self._call("PATCH", f"/jobs/{_id(job_id)}/", _data, body=values)

    @operation("DELETE", "/api/v1/jobs/{id}/")
    def delete_job(self, job_id: int | str) -> Call[None]:
        return self._call("DELETE", f"/jobs/{_id(job_id)}/", _nothing)

    @operation("POST", "/api/v1/jobs/{id}/relaunch/")
    def relaunch_job(self, job_id: int | str) -> Call[models.Job]:
        return self._call("POST", f"/jobs/{_id(job_id)}/relaunch/", _data)

    @operation("POST", "/api/v1/jobs/{id}/cancel/")
    def cancel_job(self, job_id: int | str) -> Call[models.Job]:
        return self._call("POST", f"/jobs/{_id(job_id)}/cancel/", _data)

    @operation("POST", "/api/v1/jobs/{id}/start/")
    def start_job(self, job_id: int | str) -> Call[models.Job]:
        """Start an `external` job (its outcome ends it)."""
        return self._call("POST", f"/jobs/{_id(job_id)}/start/", _data)

    @operation("GET", "/api/v1/jobs/{id}/events/")
    def job_events(self, job_id: int | str) -> Call[list[models.Event]]:
        return self._call("GET", f"/jobs/{_id(job_id)}/events/", _data)

    @operation("GET", "/api/v1/jobs/{id}/log/")
    def job_log(
        self, job_id: int | str, *, offset: int = 0, attempt: int | None = None
    ) -> Call[LogPiece]:
        """The log's text from byte `offset` (of the latest attempt unless one is named)."""
        params: Params = [("offset", str(offset))]
        if attempt is not None:
            params.append(("attempt", str(attempt)))
        accept = {**self.headers, "Accept": "text/plain"}
        path = f"/api/v1/jobs/{_id(job_id)}/log/"
        return Call("GET", path, _log_piece, params=params, headers=accept)

    def follow_log(self, job_id: int | str, *, last_event_id: str = "") -> Call[httpx.Response]:
        """The log as server-sent events, every attempt until the job ends (`LogEvents`)."""
        headers = {**self.headers, "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return Call("GET", f"/api/v1/jobs/{_id(job_id)}/log/", checked, headers=headers)

    @operation("GET", "/api/v1/jobs/{id}/results/")
    def job_results(self, job_id: int | str) -> Call[list[models.Result]]:
        return self._call("GET", f"/jobs/{_id(job_id)}/results/", _data)

    @operation("POST", "/api/v1/jobs/{id}/results/")
    def add_result(self, job_id: int | str, result: Data) -> Call[models.Result]:
        return self._call("POST", f"/jobs/{_id(job_id)}/results/", _data, body=result)

    @operation("PUT", "/api/v1/jobs/{id}/outcome/")
    def set_outcome(self, job_id: int | str, status: str, result: str) -> Call[models.Job]:
        """`status`: `completedOk` or `completedWithIssues`; `result`: one the package allows."""
        body = {"status": status, "result": result}
        return self._call("PUT", f"/jobs/{_id(job_id)}/outcome/", _data, body=body)

    # Schedules and retention --------------------------------------------------------------

    @operation("GET", "/api/v1/schedules/")
    def list_schedules(self, params: Params) -> Call[Page]:
        return self._list("schedules", params)

    @operation("POST", "/api/v1/schedules/")
    def create_schedule(self, values: Data) -> Call[models.Schedule]:
        """A cron expression (`cron`, `timezone`) or an `interval`, and what it launches."""
        return self._create("schedules", values)

    @operation("GET", "/api/v1/schedules/{id}/")
    def get_schedule(self, schedule_id: int | str) -> Call[models.Schedule]:
        return self._get("schedules", schedule_id)

    @operation("PATCH", "/api/v1/schedules/{id}/")
    def edit_schedule(self, schedule_id: int | str, values: Data) -> Call[models.Schedule]:
        return self._edit("schedules", schedule_id, values)

    @operation("DELETE", "/api/v1/schedules/{id}/")
    def delete_schedule(self, schedule_id: int | str) -> Call[None]:
        return self._delete("schedules", schedule_id)

    @operation("POST", "/api/v1/schedules/{id}/pause/")
    def pause_schedule(self, schedule_id: int | str) -> Call[models.Schedule]:
        return self._call("POST", f"/schedules/{_id(schedule_id)}/pause/", _data)

    @operation("POST", "/api/v1/schedules/{id}/resume/")
    def resume_schedule(self, schedule_id: int | str) -> Call[models.Schedule]:
        return self._call("POST", f"/schedules/{_id(schedule_id)}/resume/", _data)

    @operation("GET", "/api/v1/schedules/{id}/fires/")
    def schedule_fires(self, schedule_id: int | str, params: Params) -> Call[Page]:
        """The times it fired and the jobs it launched, newest first by default."""
        return self._list(f"schedules/{_id(schedule_id)}/fires", params)

    @operation("GET", "/api/v1/retention/")
    def get_retention(self) -> Call[Data]:
        return self._call("GET", "/retention/", _data)

    @operation("PUT", "/api/v1/retention/")
    def set_retention(self, policy: Data) -> Call[Data]:
        return self._call("PUT", "/retention/", _data, body=policy)

    @operation("GET", "/api/v1/retention/preview/")
    def preview_retention(self) -> Call[Data]:
        """What retention would delete now (a dry run)."""
        return self._call("GET", "/retention/preview/", _data)

    # Webhooks -----------------------------------------------------------------------------

    @operation("GET", "/api/v1/webhooks/")
    def list_webhooks(self, params: Params) -> Call[Page]:
        return self._list("webhooks", params)

    @operation("POST", "/api/v1/webhooks/")
    def create_webhook(self, values: Data) -> Call[models.Webhook]:
        """A new webhook: `{"url": ..., "events": [...]}`; its `secret` is in this answer only."""
        return self._create("webhooks", values)

    @operation("GET", "/api/v1/webhooks/{id}/")
    def get_webhook(self, webhook_id: int | str) -> Call[models.Webhook]:
        return self._get("webhooks", webhook_id)

    @operation("PATCH", "/api/v1/webhooks/{id}/")
    def edit_webhook(self, webhook_id: int | str, values: Data) -> Call[models.Webhook]:
        """`{"enabled": true}` re-enables a disabled webhook."""
        return self._edit("webhooks", webhook_id, values)

    @operation("DELETE", "/api/v1/webhooks/{id}/")
    def delete_webhook(self, webhook_id: int | str) -> Call[None]:
        return self._delete("webhooks", webhook_id)

    @operation("GET", "/api/v1/webhooks/{id}/deliveries/")
    def webhook_deliveries(self, webhook_id: int | str, params: Params) -> Call[Page]:
        """The delivery log, newest first."""
        return self._list(f"webhooks/{_id(webhook_id)}/deliveries", params)

    @operation("POST", "/api/v1/webhooks/{id}/deliveries/{id}/redeliver/")
    def redeliver(
        self, webhook_id: int | str, delivery_id: int | str
    ) -> Call[models.WebhookDelivery]:
        path = f"/webhooks/{_id(webhook_id)}/deliveries/{_id(delivery_id)}/redeliver/"
        return self._call("POST", path, _data)

    @operation("POST", "/api/v1/webhooks/{id}/test/")
    def test_webhook(self, webhook_id: int | str) -> Call[models.WebhookDelivery]:
        """Send a `ping` event now."""
        return self._call("POST", f"/webhooks/{_id(webhook_id)}/test/", _data)

    # Runs, workers, system ----------------------------------------------------------------

    @operation("GET", "/api/v1/runs/")
    def list_runs(self, params: Params) -> Call[Page]:
        return self._list("runs", params)

    @operation("GET", "/api/v1/runs/{id}/")
    def get_run(self, run_id: int | str) -> Call[models.Run]:
        return self._call("GET", f"/runs/{_id(run_id)}/", _data)

    @operation("GET", "/api/v1/workers/")
    def list_workers(self, *, include_stopped: bool = False) -> Call[list[models.Worker]]:
        params: Params = [("all", "true")] if include_stopped else []
        return self._call("GET", "/workers/", _data, params=params)

    @operation("GET", "/api/v1/system/hostname/")
    def hostname(self) -> Call[Data]:
        return self._call("GET", "/system/hostname/", _data)

    @operation("GET", "/api/v1/system/version/")
    def version(self) -> Call[Data]:
        return self._call("GET", "/system/version/", _data)

    # Accounts -----------------------------------------------------------------------------

    @operation("GET", "/api/v1/users/")
    def list_users(self, params: Params) -> Call[Page]:
        return self._list("users", params)

    @operation("POST", "/api/v1/users/")
    def create_user(self, values: Data) -> Call[models.User]:
        return self._create("users", values)

    @operation("GET", "/api/v1/users/me/")
    def current_user(self) -> Call[models.User]:
        return self._call("GET", "/users/me/", _data)

    @operation("GET", "/api/v1/users/{id}/")
    def get_user(self, user_id: int | str) -> Call[models.User]:
        return self._get("users", user_id)

    @operation("PATCH", "/api/v1/users/{id}/")
    def edit_user(self, user_id: int | str, values: Data) -> Call[models.User]:
        return self._edit("users", user_id, values)

    @operation("DELETE", "/api/v1/users/{id}/")
    def delete_user(self, user_id: int | str) -> Call[None]:
        return self._delete("users", user_id)

    @operation("GET", "/api/v1/tokens/")
    def list_tokens(self, params: Params) -> Call[Page]:
        return self._list("tokens", params)

    @operation("POST", "/api/v1/tokens/")
    def create_token(self, values: Data) -> Call[models.Token]:
        """A new token; its `secret` is in this answer only."""
        return self._create("tokens", values)

    @operation("DELETE", "/api/v1/tokens/{id}/")
    def revoke_token(self, token_id: int | str) -> Call[None]:
        return self._delete("tokens", token_id)

    @operation("GET", "/api/v1/tenants/")
    def list_customers(self) -> Call[list[models.Customer]]:
        return self._call("GET", "/tenants/", _data)

    @operation("POST", "/api/v1/tenants/")
    def create_customer(self, name: str) -> Call[models.Customer]:
        return self._call("POST", "/tenants/", _data, body={"name": name})

    @operation("GET", "/api/v1/events/")
    def list_events(self, params: Params) -> Call[Page]:
        return self._list("events", params)


# Operations of the API that the client makes another way, and why.
COVERED_OTHERWISE: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/jobs/{id}/outcome/"): "the same as PUT (set_outcome), for CDRouter",
    ("PATCH", "/api/v1/jobs/{id}/results/"): "the same as POST (add_result), for CDRouter",
    ("POST", "/authenticate"): "CDRouter's password login; the client takes a token",
}
