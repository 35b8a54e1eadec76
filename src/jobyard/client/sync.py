"""The client for scripts: `Client(url, token)`, every operation of the native API as a
method (see `calls.Calls` for each one's arguments), lists as iterators over their pages, and
a job's log followed live.

    from jobyard.client import Client

    with Client("http://127.0.0.1:8080", token) as jobyard:
        job = jobyard.launch({"package_id": "3"})
        for event in jobyard.follow(job["id"]):
            print(event.text, end="")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Concatenate, Generic, ParamSpec, TypeVar

import httpx

from jobyard.client.calls import Call, Calls, Data, Page, Params, list_params
from jobyard.client.errors import ServerUnreachable
from jobyard.client.following import LogEvent, read_events

P = ParamSpec("P")
T = TypeVar("T")
RETRY_PAUSES = (0.2, 0.5, 1.0)  # between the tries of a safe call that found no server


class _SyncCall(Generic[P, T]):
    """A `Calls` method as a method of `Client`: the call made, its answer read."""

    def __init__(self, make: Callable[Concatenate[Calls, P], Call[T]]) -> None:
        self.make = make
        self.__doc__ = make.__doc__

    def __get__(self, client: Client, owner: type[Client]) -> Callable[P, T]:
        def send(*args: P.args, **kwargs: P.kwargs) -> T:
            return client.send(self.make(client.calls, *args, **kwargs))

        return send


def sync_call(make: Callable[Concatenate[Calls, P], Call[T]]) -> _SyncCall[P, T]:
    return _SyncCall(make)


class Client:
    """A jobyard server, as one person (the token's) and, for a system admin, one customer."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        customer: int | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.calls = Calls(customer)
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call[T]) -> T:
        """Make one call; a safe one is tried again while the server cannot be reached."""
        pauses = RETRY_PAUSES if call.safe else ()
        for pause in (*pauses, None):
            try:
                return call.read(self.http.send(call.request(self.http)))
            except httpx.TransportError as exc:
                if pause is None:
                    raise ServerUnreachable(_unreachable(self.http, exc)) from None
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, list_call: Callable[[Params], Call[Page]], params: Params) -> Iterator[Data]:
        """Every item of a list, page after page (`params` without `page`)."""
        page = 1
        while True:
            found = self.send(list_call([*params, ("page", str(page))]))
            yield from found.items
            if found.current >= found.last:
                return
            page += 1

    def jobs(
        self, filters: Sequence[str] = (), sort: str | None = None, *, page_size: int = 100
    ) -> Iterator[Data]:
        """Every job the filters select (the API's grammar), in `sort` order."""
        return self.pages(self.calls.list_jobs, list_params(filters, sort, limit=page_size))

    def follow(self, job_id: int | str) -> Iterator[LogEvent]:
        """The job's output as it is written, through every attempt, until it ends (the
        last event is the end, with the status and exit code); resumes after a dropped
        connection where it stopped."""
        last = ""
        while True:
            call = self.calls.follow_log(job_id, last_event_id=last)
            try:
                with self.http.stream("GET", call.path, headers=call.headers) as answer:
                    if answer.is_error:
                        answer.read()  # the problem details, for the error
                    call.read(answer)
                    for event in read_events(answer.iter_lines()):
                        last = event.id or last
                        yield event
                        if event.kind in {"end", "error"}:
                            return
            except httpx.TransportError as exc:
                if not last:
                    raise ServerUnreachable(_unreachable(self.http, exc)) from None
                time.sleep(RETRY_PAUSES[0])

    list_packages = sync_call(Calls.list_packages)
    create_package = sync_call(Calls.create_package)
    get_package = sync_call(Calls.get_package)
    edit_package = sync_call(Calls.edit_package)
    delete_package = sync_call(Calls.delete_package)
    list_devices = sync_call(Calls.list_devices)
    create_device = sync_call(Calls.create_device)
    get_device = sync_call(Calls.get_device)
    edit_device = sync_call(Calls.edit_device)
    delete_device = sync_call(Calls.delete_device)
    list_configs = sync_call(Calls.list_configs)
    create_config = sync_call(Calls.create_config)
    get_config = sync_call(Calls.get_config)
    edit_config = sync_call(Calls.edit_config)
    delete_config = sync_call(Calls.delete_config)
    list_jobs = sync_call(Calls.list_jobs)
    launch = sync_call(Calls.launch)
    bulk_launch = sync_call(Calls.bulk_launch)
    bulk_delete = sync_call(Calls.bulk_delete)
    interfaces = sync_call(Calls.interfaces)
    get_job = sync_call(Calls.get_job)
    edit_job = sync_call(Calls.edit_job)
    delete_job = sync_call(Calls.delete_job)
    relaunch_job = sync_call(Calls.relaunch_job)
    cancel_job = sync_call(Calls.cancel_job)
    start_job = sync_call(Calls.start_job)
    job_events = sync_call(Calls.job_events)
    job_log = sync_call(Calls.job_log)
    job_results = sync_call(Calls.job_results)
    add_result = sync_call(Calls.add_result)
    set_outcome = sync_call(Calls.set_outcome)
    list_schedules = sync_call(Calls.list_schedules)
    create_schedule = sync_call(Calls.create_schedule)
    get_schedule = sync_call(Calls.get_schedule)
    edit_schedule = sync_call(Calls.edit_schedule)
    delete_schedule = sync_call(Calls.delete_schedule)
    pause_schedule = sync_call(Calls.pause_schedule)
    resume_schedule = sync_call(Calls.resume_schedule)
    schedule_fires = sync_call(Calls.schedule_fires)
    get_retention = sync_call(Calls.get_retention)
    set_retention = sync_call(Calls.set_retention)
    preview_retention = sync_call(Calls.preview_retention)
    list_webhooks = sync_call(Calls.list_webhooks)
    create_webhook = sync_call(Calls.create_webhook)
    get_webhook = sync_call(Calls.get_webhook)
    edit_webhook = sync_call(Calls.edit_webhook)
    delete_webhook = sync_call(Calls.delete_webhook)
    webhook_deliveries = sync_call(Calls.webhook_deliveries)
    redeliver = sync_call(Calls.redeliver)
    test_webhook = sync_call(Calls.test_webhook)
    list_runs = sync_call(Calls.list_runs)
    get_run = sync_call(Calls.get_run)
    list_workers = sync_call(Calls.list_workers)
    hostname = sync_call(Calls.hostname)
    version = sync_call(Calls.version)
    list_users = sync_call(Calls.list_users)
    create_user = sync_call(Calls.create_user)
    current_user = sync_call(Calls.current_user)
    get_user = sync_call(Calls.get_user)
    edit_user = sync_call(Calls.edit_user)
    delete_user = sync_call(Calls.delete_user)
    list_tokens = sync_call(Calls.list_tokens)
    create_token = sync_call(Calls.create_token)
    revoke_token = sync_call(Calls.revoke_token)
    list_customers = sync_call(Calls.list_customers)
    create_customer = sync_call(Calls.create_customer)
    list_events = sync_call(Calls.list_events)


def _unreachable(http: httpx.Client | httpx.AsyncClient, exc: Exception) -> str:
    return f"no answer from {http.base_url}: {exc.__class__.__name__}: {exc}".rstrip(": ")
