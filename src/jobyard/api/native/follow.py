"""A job's log followed live as server-sent events: the framing of what `log_follow`
decides to send (docs/api.md#following-a-log-live)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from jobyard import jsontext
from jobyard.api.calls import runtime_of
from jobyard.domain.permissions import Principal
from jobyard.services import log_follow
from jobyard.services.log_follow import AttemptStarted, Ended, Event, Output, Position

KEEPALIVE_SECONDS = 15.0  # a comment this often keeps proxies from closing a quiet stream
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def respond(
    request: Request,
    who: Principal,
    job_id: int,
    *,
    offset: int,
    attempt: int | None,
    stream: str | None,
    last_event_id: str | None,
) -> StreamingResponse:
    """The event stream; a malformed `Last-Event-ID`, a job the caller may not read or a
    bad parameter is an error answer before it starts."""
    resume: Position | None = None
    if last_event_id:
        found = log_follow.parse_event_id(last_event_id)
        if isinstance(found, Position):
            resume = found
        else:
            offset = found
    events = await log_follow.follow_log(
        runtime_of(request),
        actor=who,
        job_id=job_id,
        stream=stream,
        attempt=attempt,
        offset=offset,
        resume=resume,
    )
    return StreamingResponse(
        _frames(request, events), media_type="text/event-stream", headers=HEADERS
    )


async def _frames(
    request: Request, events: AsyncGenerator[Event | None, None]
) -> AsyncIterator[bytes]:
    quiet = 0.0
    try:
        async for event in events:
            if event is not None:
                quiet = 0.0
                yield frame(event)
                continue
            # Nothing for a while: a client that left is noticed here, not at the next write.
            if await request.is_disconnected():
                return
            quiet += log_follow.QUIET_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"
    finally:
        await events.aclose()  # its ticket is given back now, not when it is collected


def frame(event: Event) -> bytes:
    """One event as server-sent events put it: its name, its id (none for `error`: a
    resume goes on from the last event given) and its data as one line of JSON."""
    name, data = _named(event)
    head = f"event: {name}\n"
    if not isinstance(event, log_follow.Problem):
        head += f"id: {event.id}\n"
    return f"{head}data: {jsontext.dumps(data)}\n\n".encode()


def _named(event: Event) -> tuple[str, dict[str, Any]]:
    if isinstance(event, AttemptStarted):
        return "attempt", {"attempt": event.attempt, "run_id": str(event.run_id)}
    if isinstance(event, Output):
        return "output", {"attempt": event.attempt, "stream": event.stream, "content": event.text}
    if isinstance(event, Ended):
        # exit_code is null when the job has none (it never ran, or a signal ended it).
        ended = {"status": event.status.value, "exit_code": event.exit_code}
        return "end", ended | {"attempt": event.attempt}
    return "error", {"error": event.message}
