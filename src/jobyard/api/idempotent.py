"""The `Idempotency-Key` header of launches, read into what the launch services take: the
key and the fingerprint of the request it came with (`domain.idempotency`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from jobyard.domain.idempotency import HEADER, Idempotency, idempotency

REPLAYED = "Idempotent-Replayed"  # "true" on an answer given again for a repeated key
# Credentials in the query are not part of what a request asks.
NOT_ASKED = frozenset({"token", "api-token"})

DECLARED: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Launch once: a retry with the same key and request within 24 h answers "
    "the first launch's jobs and launches nothing (`Idempotent-Replayed: true`); the same key "
    "with another request is a 422. Keys are per customer; 1 to 255 printable ASCII characters",
    "schema": {"type": "string", "maxLength": 255},
}


def requested(request: Request, operation: str, body: Any) -> Idempotency | None:
    """The request's key and fingerprint, or None when it sent no key (a 400 for a bad one)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    params = request.query_params
    query = {name: params.getlist(name) for name in sorted(params) if name not in NOT_ASKED}
    return idempotency(raw, operation, query, body)


def marked(response: Response, replayed: bool) -> Response:
    if replayed:
        response.headers[REPLAYED] = "true"
    return response
