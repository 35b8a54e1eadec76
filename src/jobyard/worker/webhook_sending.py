"""One try of a webhook delivery over HTTP: the host resolved and every address it has
judged (`domain.webhook_addresses`), then a POST to the very address judged (so that DNS
cannot answer one address to the check and another to the connection), with the URL's
name kept as the Host header and the TLS server name; no redirect is followed, the answer's
body is not read, and the whole try has a time limit."""

from __future__ import annotations

import ipaddress
import socket
import time
from datetime import datetime

import httpx

from jobyard import jsontext
from jobyard.domain import webhook_addresses as addresses
from jobyard.domain import webhooks as rules
from jobyard.domain.webhooks import Attempt, Delivery, Webhook
from jobyard.errors import RuleViolation

USER_AGENT = "jobyard-webhooks"


def resolve(target: addresses.Target) -> list[addresses.IPAddress]:
    """Every address of the target's host (the address itself when it is one)."""
    literal = target.literal
    if literal is not None:
        return [literal]
    if target.loopback_name:
        return [ipaddress.ip_address("127.0.0.1")]
    found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


def pinned_url(target: addresses.Target, address: addresses.IPAddress) -> httpx.URL:
    """The target's URL with its host replaced by the address to connect to."""
    return httpx.URL(target.url).copy_with(host=str(address), port=target.port)


def headers_for(delivery: Delivery, secret: str, body: bytes, now: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        rules.EVENT_HEADER: delivery.event.value,
        rules.DELIVERY_HEADER: str(delivery.id),
        rules.SIGNATURE_HEADER: rules.signature(secret, now, body),
    }


class Refused(Exception):
    """The try is not made; the message says why."""


def checked_target(
    url: str, allowed: tuple[addresses.IPNetwork, ...]
) -> tuple[addresses.Target, addresses.IPAddress]:
    """The URL's target and the address to connect to, every address of its host judged."""
    try:
        target = addresses.parse_url(url)
        httpx.URL(url)  # what httpx refuses (an invalid international name) is refused here
    except (RuleViolation, httpx.InvalidURL) as error:
        raise Refused(f"refused: {getattr(error, 'message', error)}") from None
    try:
        found = resolve(target)
    except (OSError, UnicodeError) as error:
        raise Refused(f"cannot resolve {target.host}: {error}") from None
    try:
        addresses.check_addresses(found, allowed)
    except RuleViolation as refused:
        raise Refused(f"refused: {refused.message}") from None
    return target, found[0]


def send(
    client: httpx.Client,
    delivery: Delivery,
    webhook: Webhook,
    secret: str,
    *,
    allowed: tuple[addresses.IPNetwork, ...],
    at: datetime,
) -> Attempt:
    """Try the delivery once; the attempt says what came of it."""
    started = time.monotonic()

    def attempt(status_code: int | None, error: str | None) -> Attempt:
        took = int((time.monotonic() - started) * 1000)
        return Attempt(at=at, status_code=status_code, error=error, duration_ms=took)

    try:
        target, address = checked_target(webhook.url, allowed)
    except Refused as refused:
        return attempt(None, str(refused))
    body = jsontext.dumps_bytes(delivery.body())
    headers = headers_for(delivery, secret, body, int(time.time()))
    headers["Host"] = httpx.URL(webhook.url).netloc.decode("ascii")
    request = client.build_request(
        "POST",
        pinned_url(target, address),
        content=body,
        headers=headers,
        extensions={"sni_hostname": target.host},
    )
    try:
        answer = client.send(request, stream=True, follow_redirects=False)
    except httpx.HTTPError as error:
        return attempt(None, f"{type(error).__name__}: {error}".rstrip(": "))
    answer.close()  # the status is all that counts: the body is never read
    return attempt(answer.status_code, None if answer.is_success else _reason(answer))


def new_client(timeout: float) -> httpx.Client:
    """The dispatcher's HTTP client: no proxy from the environment (it would connect where
    the address check never looked), no redirects, a time limit on every phase."""
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


def _reason(answer: httpx.Response) -> str:
    return f"answered {answer.status_code} {answer.reason_phrase}".strip()
