"""XML for the native API: a client that asks for it (`Accept: application/xml`) gets every
answer, errors included, through the one Rails-style renderer the BMC dialect uses too."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard import jsontext
from jobyard.api.xml import to_xml

XML_TYPES = ("application/xml", "text/xml")
JSON_TYPES = ("application/json", "application/problem+json")
NATIVE_PREFIX = "/api/v1/"


def wants_xml(accept: str) -> bool:
    """XML when the client names it before (or without) JSON."""
    ranked = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in ranked:
        if media in XML_TYPES:
            return True
        if media in ("application/json", "application/*", "*/*"):
            return False
    return False


class XmlNegotiation:
    """Re-renders the native API's JSON answers as XML for clients that ask for XML."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope.get("path", "").startswith(NATIVE_PREFIX)
            or not wants_xml(Headers(scope=scope).get("accept", ""))
        ):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send(start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    @staticmethod
    async def _send(start: Message, body: bytes, send: Send) -> None:
        headers = MutableHeaders(raw=list(start["headers"]))
        media = headers.get("content-type", "").split(";")[0].strip()
        if media in JSON_TYPES and body:
            body = to_xml(jsontext.loads(body), "response").encode()
            headers["content-type"] = "application/xml; charset=utf-8"
            headers["content-length"] = str(len(body))
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})
