"""A typed Python client for jobyard's native API, sync (`Client`) and async
(`AsyncClient`), over httpx (docs/client.md). It imports nothing of the server."""

from jobyard.client.aio import AsyncClient
from jobyard.client.calls import Call, Calls, Data, Page, list_params
from jobyard.client.errors import (
    AuthenticationFailed,
    JobyardClientError,
    NotFound,
    Refused,
    ServerFailed,
    ServerUnreachable,
)
from jobyard.client.following import LogEvent
from jobyard.client.sync import Client

__all__ = [
    "AsyncClient",
    "AuthenticationFailed",
    "Call",
    "Calls",
    "Client",
    "Data",
    "JobyardClientError",
    "LogEvent",
    "NotFound",
    "Page",
    "Refused",
    "ServerFailed",
    "ServerUnreachable",
    "list_params",
]
