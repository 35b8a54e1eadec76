"""The rules of webhooks without a server: which addresses may be called (IPv4, IPv6 and
IPv4-mapped, unless allowed), the waits between tries, the events a webhook takes, the
signature against the documented check, and the settings read from the environment."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime

import pytest

from jobyard.domain import webhook_addresses as addresses
from jobyard.domain import webhooks as rules
from jobyard.domain.webhooks import OutboxEvent, RetryRules, Webhook, WebhookEvent
from jobyard.errors import RuleViolation, ValidationFailed
from jobyard.settings import load_settings
from jobyard.worker import webhook_sending
from tests.webhooks.receiver import documented_verify

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def refused(address: str, allowed: tuple[str, ...] = ()) -> str | None:
    networks = addresses.parse_networks(allowed)
    return addresses.why_refused(ipaddress.ip_address(address), networks)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not one bound)
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fd12::1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around the metadata address
        ("::10.0.0.1", "private"),  # IPv4-compatible
        ("100.64.0.1", "not public"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, kind: str) -> None:
    reason = refused(address)
    assert reason is not None
    assert f"is a {kind} address" in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused(address) is None


def test_allowed_networks_open_exactly_themselves() -> None:
    assert refused("127.0.0.1", ("127.0.0.0/8",)) is None
    assert refused("::ffff:127.0.0.1", ("127.0.0.0/8",)) is None  # mapped: the IPv4 address
    assert refused("::1", ("127.0.0.0/8",)) is not None
    assert refused("10.0.0.1", ("127.0.0.0/8",)) is not None
    assert refused("fd00::5", ("fd00::/8",)) is None


def test_urls_are_taken_apart_and_checked() -> None:
    target = addresses.parse_url("https://Hooks.Example.com:8443/a?b=1")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 8443)
    assert addresses.parse_url("http://[2001:db8::1]/").literal == ipaddress.ip_address(
        "2001:db8::1"
    )
    assert addresses.parse_url("http://x.localhost/").loopback_name
    with pytest.raises(RuleViolation) as bad:
        addresses.parse_url("file:///etc/passwd")
    assert bad.value.field == "url"
    addresses.check_target(addresses.parse_url("https://example.com/"), ())  # names: at delivery
    with pytest.raises(RuleViolation):
        addresses.check_target(addresses.parse_url("http://LOCALHOST/"), ())
    with pytest.raises(RuleViolation):
        addresses.check_addresses([], ())


def test_waits_double_up_to_the_longest() -> None:
    retry = RetryRules(max_attempts=8, first_wait=10, longest_wait=60, disable_after=10)
    assert [retry.wait_after(n) for n in range(1, 7)] == [10, 20, 40, 60, 60, 60]
    assert not retry.exhausted(7)
    assert retry.exhausted(8)


def test_events_are_known_ones_in_a_stable_order() -> None:
    assert rules.parse_events(["job.outcome", "job.launched", "job.outcome"]) == (
        WebhookEvent.LAUNCHED,
        WebhookEvent.OUTCOME,
    )
    for bad in (["ping"], ["job.done"], []):
        with pytest.raises(ValidationFailed):
            rules.parse_events(bad)


def hook(**fields: object) -> Webhook:
    values: dict[str, object] = {
        "id": 1,
        "tenant_id": 2,
        "package_id": None,
        "url": "https://example.com/",
        "description": "",
        "events": (WebhookEvent.FINISHED,),
        "sealed_secret": "v1:sealed",
        "secret_hint": "…aled",
        "enabled": True,
        "disabled_reason": None,
        "consecutive_failures": 0,
        "user_id": 1,
        "created": NOW,
        "updated": NOW,
    } | fields
    return Webhook(**values)  # type: ignore[arg-type]


def test_an_event_goes_to_the_webhooks_that_want_it() -> None:
    event = OutboxEvent(1, 7, 2, 3, WebhookEvent.FINISHED, "completed", NOW)
    hooks = [
        hook(id=1),
        hook(id=2, package_id=3),
        hook(id=3, package_id=4),
        hook(id=4, tenant_id=5),
        hook(id=5, enabled=False),
        hook(id=6, events=(WebhookEvent.STARTED,)),
    ]
    assert [h.id for h in rules.matching(hooks, event)] == [1, 2]


def test_the_signature_is_what_the_documented_check_accepts() -> None:
    verify = documented_verify()
    body = b'{"id": "1", "event": "ping"}'
    header = rules.signature("a-webhook-secret-value", 1_764_870_000, body)
    assert header.startswith("t=1764870000,v1=")
    assert verify("a-webhook-secret-value", header, body, 1_764_870_100)
    assert not verify("a-webhook-secret-value", header, body, 1_764_870_000 + 301)
    assert not verify("a-webhook-secret-value", "t=x,v1=00", body)


def test_the_settings_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "JOBYARD_WEBHOOK_ALLOW_NETWORKS": " 127.0.0.1/8 , fd00::/8,",
            "JOBYARD_WEBHOOK_MAX_ATTEMPTS": "3",
            "JOBYARD_WEBHOOK_RETRY_SECONDS": "0.5",
        }
    )
    assert settings.webhook_allow_networks == "127.0.0.0/8,fd00::/8"
    assert (settings.webhook_max_attempts, settings.webhook_retry_seconds) == (3, 0.5)
    assert load_settings({}).webhook_allow_networks == ""
    with pytest.raises(ValidationFailed, match="JOBYARD_WEBHOOK_ALLOW_NETWORKS"):
        load_settings({"JOBYARD_WEBHOOK_ALLOW_NETWORKS": "localhost"})
    with pytest.raises(ValidationFailed, match="JOBYARD_WEBHOOK_MAX_ATTEMPTS"):
        load_settings({"JOBYARD_WEBHOOK_MAX_ATTEMPTS": "0"})


def test_a_name_is_resolved_and_every_address_judged_before_a_try() -> None:
    """The host's own name resolves (through the system's resolver) to an address of this
    host, never public: refused, unless its network is allowed, and then pinned."""
    name = socket.gethostname()
    try:
        found = webhook_sending.resolve(addresses.parse_url(f"http://{name}/"))
    except OSError:
        pytest.skip(f"this host's name {name!r} does not resolve here")
    if any(a.is_global for a in found):
        pytest.skip(f"this host's name {name!r} resolves to a public address")
    with pytest.raises(webhook_sending.Refused, match="JOBYARD_WEBHOOK_ALLOW_NETWORKS"):
        webhook_sending.checked_target(f"http://{name}:8080/hooks", ())
    everything = addresses.parse_networks(["0.0.0.0/0", "::/0"])
    target, address = webhook_sending.checked_target(f"http://{name}:8080/hooks", everything)
    assert address in found
    pinned = webhook_sending.pinned_url(target, address)
    assert (pinned.host, pinned.port, pinned.path) == (str(address), 8080, "/hooks")
    with pytest.raises(webhook_sending.Refused, match="cannot resolve"):
        webhook_sending.checked_target("http://no-such-host.invalid/", everything)
