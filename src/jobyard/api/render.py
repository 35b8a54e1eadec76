"""Response envelopes and value formats shared by every route (JSON here; XML joins later)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from jobyard import jsontext
from jobyard.domain.paging import PageRequest, page_links

JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"


@functools.lru_cache(maxsize=256)  # a page or a bulk launch shares a few times
def rfc3339(value: datetime) -> str:
    """RFC 3339 with an explicit offset, as the CDRouter client needs."""
    return value.astimezone(UTC).isoformat()


def now_stamp() -> str:
    return rfc3339(datetime.now(UTC))


def ident(value: int | None) -> str:
    """Ids are digit strings; an unset reference the cdrouter client reads is "0" (it refuses
    null there)."""
    return str(value or 0)


def ref(value: int | None) -> str | None:
    """A reference the cdrouter client never reads: its digit string, or null when unset."""
    return None if not value else str(value)


def json_response(payload: Any, status_code: int = 200, media_type: str = JSON_TYPE) -> Response:
    return Response(jsontext.dumps_bytes(payload), status_code=status_code, media_type=media_type)


def one(data: Mapping[str, Any] | Sequence[Any], status_code: int = 200) -> Response:
    return json_response({"timestamp": now_stamp(), "data": data}, status_code)


def page(data: Sequence[Any], *, total: int, request: PageRequest) -> Response:
    links = {k: v for k, v in page_links(total=total, request=request).items() if v is not None}
    return json_response({"timestamp": now_stamp(), "data": list(data), "links": links})


def no_content() -> Response:
    return Response(status_code=204)
