"""Messages between a worker's engine and its spawner process: tuples in `marshal` form,
each behind its length, over a pipe each way.

marshal is the fastest of the standard library's formats and reads back bytes as bytes; it
needs both ends to run the same Python, which they do (the spawner is started with the
engine's own interpreter), and the pipes are private to the two processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import struct
from typing import Any

HEADER = struct.Struct("<I")
# A read asks for no more than this: Python allocates what is asked for before the call, and
# a read of 1 MiB cost about 19 µs even for the 60 bytes of a report (64 KiB: 1.5 µs). A
# pipe with more left is readable again at the next poll.
READ_BYTES = 64 * 1024
PIPE_BYTES = 1024 * 1024  # fewer waits on a full pipe under load (the kernel may cap it)

Message = tuple[Any, ...]


def encode(message: Message) -> bytes:
    body = marshal.dumps(message)
    return HEADER.pack(len(body)) + body


def widen(fd: int) -> None:
    """Ask for a larger pipe buffer; the default stays where the kernel refuses."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class Inbox:
    """Collects what a pipe delivers and hands out the whole messages in it."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def read_from(self, fd: int) -> list[Message] | None:
        """The whole messages a non-blocking pipe has for us now; None once it has closed."""
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return []
        return self.feed(data) if data else None

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        at, end = 0, len(buffer)
        while end - at >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, at)
            start = at + HEADER.size
            if end - start < size:
                break
            # Only our own spawner or engine writes to this pipe (see the module's note).
            messages.append(marshal.loads(buffer[start : start + size]))  # noqa: S302
            at = start + size
        del buffer[:at]
        return messages


class Outbox:
    """Messages waiting to be written to a pipe, written in as few calls as they allow."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def __bool__(self) -> bool:
        return bool(self._buffer)

    def put(self, message: Message) -> None:
        self._buffer += encode(message)

    def flush(self) -> bool:
        """Write what the pipe takes now (all of it, on a blocking pipe); True once empty.
        BrokenPipeError: the reader has gone."""
        buffer = self._buffer
        while buffer:
            try:
                written = os.write(self.fd, buffer)
            except BlockingIOError:
                return False
            del buffer[:written]
        return True

    def discard(self) -> None:
        self._buffer.clear()
