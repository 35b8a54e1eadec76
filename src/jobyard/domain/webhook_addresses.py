"""Where a webhook may deliver: an http(s) URL without credentials, whose host's addresses
are public unless the admin allowed their networks (`JOBYARD_WEBHOOK_ALLOW_NETWORKS`), so
that a customer cannot make the server call its own loopback, its private network or a
cloud's metadata address (docs/webhooks.md, "Addresses")."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from jobyard.errors import RuleViolation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2000
SCHEMES = {"http": 80, "https": 443}
# Names that are the loopback whatever DNS says (RFC 6761).
LOOPBACK_NAMES = ("localhost", ".localhost")


@dataclass(frozen=True)
class Target:
    """A URL taken apart: what to connect to, and what to call it (Host, TLS name)."""

    url: str
    scheme: str
    host: str  # a name, or an address without brackets
    port: int

    @property
    def literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def loopback_name(self) -> bool:
        name = self.host.lower().rstrip(".")
        return name == LOOPBACK_NAMES[0] or name.endswith(LOOPBACK_NAMES[1])


def _refuse(message: str) -> RuleViolation:
    return RuleViolation(message, field="url")


def parse_url(url: str) -> Target:
    """A webhook's URL, or a 422 naming what is wrong with it."""
    if not url or len(url) > MAX_URL_LENGTH or not url.isprintable() or " " in url:
        raise _refuse(f"a webhook's url is 1 to {MAX_URL_LENGTH} printable characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _refuse(f"not a valid url: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _refuse("a webhook's url must be http:// or https://")
    _check_parts(parts)
    host = parts.hostname or ""
    return Target(url=url, scheme=scheme, host=host, port=port or SCHEMES[scheme])


def _check_parts(parts: SplitResult) -> None:
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("a webhook's url may not hold credentials (user:password@)")
    if not parts.hostname:
        raise _refuse("a webhook's url needs a host")
    if parts.fragment:
        raise _refuse("a webhook's url may not have a #fragment")


def parse_networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts if text.strip())


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, but still an IPv4 inside


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries, where it reaches that IPv4 address: mapped
    (::ffff:127.0.0.1), 6to4 (2002:7f00:1::), NAT64 (64:ff9b::7f00:1) or IPv4-compatible
    (::127.0.0.1); Python calls the last three global, whatever the address inside."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def why_refused(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why the server may not deliver to `address` (None: it may)."""
    plain = _unmapped(address)
    if any(plain in network for network in allowed if network.version == plain.version):
        return None
    kinds = (
        ("loopback", plain.is_loopback),
        ("unspecified", plain.is_unspecified),
        ("link-local", plain.is_link_local),
        ("multicast", plain.is_multicast),
        ("reserved", plain.is_reserved),
        ("private", plain.is_private),
        ("not public", not plain.is_global),
    )
    for kind, applies in kinds:
        if applies:
            return (
                f"{address} is a {kind} address: an admin allows such networks with"
                " JOBYARD_WEBHOOK_ALLOW_NETWORKS"
            )
    return None


def check_addresses(addresses: Sequence[IPAddress], allowed: Sequence[IPNetwork]) -> None:
    """Refuse a host unless every address it has may be delivered to."""
    if not addresses:
        raise _refuse("the webhook's host has no address")
    for address in addresses:
        reason = why_refused(address, allowed)
        if reason is not None:
            raise _refuse(reason)


def check_target(target: Target, allowed: Sequence[IPNetwork]) -> None:
    """What can be judged without asking DNS (when a webhook is saved): an address given
    as such, or a name that is the loopback. Names are resolved, and judged, at delivery."""
    literal = target.literal
    if literal is not None:
        check_addresses([literal], allowed)
    elif target.loopback_name:
        check_addresses([ipaddress.ip_address("127.0.0.1")], allowed)
