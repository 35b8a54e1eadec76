"""A TCP proxy in front of the test PostgreSQL that a test can break: refuse new connections
and drop the open ones for a while (an outage), or cut the open ones once (a network blip).

Workers and servers under test connect through it; the test's own checks connect directly,
so they see the database while the fleet cannot.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import make_url

CHUNK = 64 * 1024


class Proxy:
    """Listens on 127.0.0.1 (a free port) and relays to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down_until = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="pg-proxy", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, url: str) -> Proxy:
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parsed = make_url(url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def cut(self) -> None:
        """Drop every open connection (new ones are accepted at once)."""
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def outage(self, seconds: float) -> None:
        """For `seconds` from now, drop open connections and refuse new ones."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
        self.cut()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """An outage for as long as the block lasts."""
        self.outage(3600)
        try:
            yield
        finally:
            with self._lock:
                self._down_until = 0.0

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.cut()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.is_down:
                _close(client)  # refused: the client sees the connection closed at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(
                target=self._relay, args=(client, upstream), name="pg-proxy-relay", daemon=True
            ).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(CHUNK)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # cut, or closed under us
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
