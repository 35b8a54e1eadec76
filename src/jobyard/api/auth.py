"""Who is calling: a bearer token in the Authorization header or a `token` parameter."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from jobyard.errors import Unauthenticated
from jobyard.services import accounts
from jobyard.services.accounts import Identity


def token_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


async def identify(request: Request) -> Identity:
    """The caller's identity, or a 401 `invalid token`."""
    token = token_from(request)
    if token is None:
        raise Unauthenticated()
    return await run_in_threadpool(accounts.authenticate_token, request.app.state.rt, token)
