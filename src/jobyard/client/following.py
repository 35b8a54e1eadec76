"""A job's log followed live: the server-sent events of `GET /api/v1/jobs/<id>/log/` with
`Accept: text/event-stream` (docs/api.md, "Following a log live"), read line by line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LogEvent:
    """`attempt` (an attempt began), `output` (text of one stream), `end` (the job's final
    status and exit code) or `error` (following stopped, and why)."""

    kind: str
    id: str
    data: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.data.get("content", "")) if self.kind == "output" else ""

    @property
    def exit_code(self) -> int | None:
        code = self.data.get("exit_code")
        return code if isinstance(code, int) else None


@dataclass
class EventReader:
    """Lines in, events out: an event is complete at the blank line after it."""

    kind: str = "message"
    id: str = ""
    data: list[str] = field(default_factory=list)

    def line(self, line: str) -> LogEvent | None:
        if not line:
            if not self.data:
                return None
            event = LogEvent(self.kind, self.id, json.loads("\n".join(self.data)))
            self.kind, self.data = "message", []
            return event
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self.kind = value
        elif key == "id":
            self.id = value
        elif key == "data":
            self.data.append(value)
        return None  # a comment (`: keep-alive`) or a field of no use here


def read_events(lines: Iterator[str]) -> Iterator[LogEvent]:
    reader = EventReader()
    for line in lines:
        event = reader.line(line)
        if event is not None:
            yield event
