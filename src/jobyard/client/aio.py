"""The client for asyncio: `AsyncClient(url, token)`, the same methods as `Client`, each
awaited, lists as async iterators and a job's log followed live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Concatenate, Generic, ParamSpec, TypeVar

import httpx

from jobyard.client.calls import Call, Calls, Data, Page, Params, list_params
from jobyard.client.errors import ServerUnreachable
from jobyard.client.following import EventReader, LogEvent
from jobyard.client.sync import RETRY_PAUSES, _unreachable

P = ParamSpec("P")
T = TypeVar("T")


class _AsyncCall(Generic[P, T]):
    """A `Calls` method as a coroutine method of `AsyncClient`."""

    def __init__(self, make: Callable[Concatenate[Calls, P], Call[T]]) -> None:
        self.make = make
        self.__doc__ = make.__doc__

    def __get__(self, client: AsyncClient, owner: type[AsyncClient]) -> Callable[P, Awaitable[T]]:
        async def send(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client.send(self.make(client.calls, *args, **kwargs))

        return send


def async_call(make: Callable[Concatenate[Calls, P], Call[T]]) -> _AsyncCall[P, T]:
    return _AsyncCall(make)


class AsyncClient:
    """A jobyard server, as one person (the token's) and, for a system admin, one customer."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        customer: int | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.calls = Calls(customer)
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Make one call; a safe one is tried again while the server cannot be reached."""
        pauses = RETRY_PAUSES if call.safe else ()
        for pause in (*pauses, None):
            try:
                return call.read(await self.http.send(call.request(self.http)))
            except httpx.TransportError as exc:
                if pause is None:
                    raise ServerUnreachable(_unreachable(self.http, exc)) from None
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def pages(
        self, list_call: Callable[[Params], Call[Page]], params: Params
    ) -> AsyncIterator[Data]:
        page = 1
        while True:
            found = await self.send(list_call([*params, ("page", str(page))]))
            for item in found.items:
                yield item
            if found.current >= found.last:
                return
            page += 1

    def jobs(
        self, filters: Sequence[str] = (), sort: str | None = None, *, page_size: int = 100
    ) -> AsyncIterator[Data]:
        return self.pages(self.calls.list_jobs, list_params(filters, sort, limit=page_size))

    async def follow(self, job_id: int | str) -> AsyncIterator[LogEvent]:
        """As `Client.follow`."""
        last = ""
        while True:
            call = self.calls.follow_log(job_id, last_event_id=last)
            reader = EventReader()
            try:
                async with self.http.stream("GET", call.path, headers=call.headers) as answer:
                    if answer.is_error:
                        await answer.aread()  # the problem details, for the error
                    call.read(answer)
                    async for line in answer.aiter_lines():
                        event = reader.line(line)
                        if event is None:
                            continue
                        last = event.id or last
                        yield event
                        if event.kind in {"end", "error"}:
                            return
            except httpx.TransportError as exc:
                if not last:
                    raise ServerUnreachable(_unreachable(self.http, exc)) from None
                await asyncio.sleep(RETRY_PAUSES[0])

    list_packages = async_call(Calls.list_packages)
    create_package = async_call(Calls.create_package)
    get_package = async_call(Calls.get_package)
    edit_package = async_call(Calls.edit_package)
    delete_package = async_call(Calls.delete_package)
    list_devices = async_call(Calls.list_devices)
    create_device = async_call(Calls.create_device)
    get_device = async_call(Calls.get_device)
    edit_device = async_call(Calls.edit_device)
    delete_device = async_call(Calls.delete_device)
    list_configs = async_call(Calls.list_configs)
    create_config = async_call(Calls.create_config)
    get_config = async_call(Calls.get_config)
    edit_config = async_call(Calls.edit_config)
    delete_config = async_call(Calls.delete_config)
    list_jobs = async_call(Calls.list_jobs)
    launch = async_call(Calls.launch)
    bulk_launch = async_call(Calls.bulk_launch)
    bulk_delete = async_call(Calls.bulk_delete)
    interfaces = async_call(Calls.interfaces)
    get_job = async_call(Calls.get_job)
    edit_job = async_call(Calls.edit_job)
    delete_job = async_call(Calls.delete_job)
    relaunch_job = async_call(Calls.relaunch_job)
    cancel_job = async_call(Calls.cancel_job)
    start_job = async_call(Calls.start_job)
    job_events = async_call(Calls.job_events)
    job_log = async_call(Calls.job_log)
    job_results = async_call(Calls.job_results)
    add_result = async_call(Calls.add_result)
    set_outcome = async_call(Calls.set_outcome)
    list_schedules = async_call(Calls.list_schedules)
    create_schedule = async_call(Calls.create_schedule)
    get_schedule = async_call(Calls.get_schedule)
    edit_schedule = async_call(Calls.edit_schedule)
    delete_schedule = async_call(Calls.delete_schedule)
    pause_schedule = async_call(Calls.pause_schedule)
    resume_schedule = async_call(Calls.resume_schedule)
    schedule_fires = async_call(Calls.schedule_fires)
    get_retention = async_call(Calls.get_retention)
    set_retention = async_call(Calls.set_retention)
    preview_retention = async_call(Calls.preview_retention)
    list_webhooks = async_call(Calls.list_webhooks)
    create_webhook = async_call(Calls.create_webhook)
    get_webhook = async_call(Calls.get_webhook)
    edit_webhook = async_call(Calls.edit_webhook)
    delete_webhook = async_call(Calls.delete_webhook)
    webhook_deliveries = async_call(Calls.webhook_deliveries)
    redeliver = async_call(Calls.redeliver)
    test_webhook = async_call(Calls.test_webhook)
    list_runs = async_call(Calls.list_runs)
    get_run = async_call(Calls.get_run)
    list_workers = async_call(Calls.list_workers)
    hostname = async_call(Calls.hostname)
    version = async_call(Calls.version)
    list_users = async_call(Calls.list_users)
    create_user = async_call(Calls.create_user)
    current_user = async_call(Calls.current_user)
    get_user = async_call(Calls.get_user)
    edit_user = async_call(Calls.edit_user)
    delete_user = async_call(Calls.delete_user)
    list_tokens = async_call(Calls.list_tokens)
    create_token = async_call(Calls.create_token)
    revoke_token = async_call(Calls.revoke_token)
    list_customers = async_call(Calls.list_customers)
    create_customer = async_call(Calls.create_customer)
    list_events = async_call(Calls.list_events)
