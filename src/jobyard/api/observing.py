"""Every request, seen from outside the routes: one log line (method, route, status,
duration; the path's secrets masked by `jobyard.logs`) and the HTTP metrics, by the matched
route's template so that ids do not make a series each."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.services import metrics

logger = logging.getLogger("jobyard.requests")
UNMATCHED = "(unmatched)"


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._observe(scope, status, time.perf_counter() - began)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED)
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_DURATION.labels(method, route).observe(seconds)
        if logger.isEnabledFor(logging.INFO):
            path = scope.get("path", "")
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            logger.info(
                "%s %s %d %.1f ms",
                method,
                f"{path}?{query}" if query else path,
                status,
                seconds * 1000,
                extra={
                    "event": "http.request",
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": f"{client[0]}:{client[1]}" if client else "",
                },
            )
