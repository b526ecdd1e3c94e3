"""The SSRF guard for back-channel logout: where this server may send a request.

A back-channel logout URI is chosen by whoever registers a client, so a request to it
must never reach this machine, its network or a cloud metadata service. Every address a
name resolves to must be globally reachable (the IANA special-purpose registries, as
Python's ``ipaddress`` knows them), including the IPv4 address inside an IPv4-mapped,
NAT64 (64:ff9b::/96), 6to4 or Teredo IPv6 address, which could otherwise reach a private
IPv4 host. The request then goes to the address that was checked, not to the name again
(``pin``), so a second DNS answer cannot swap in a private one (DNS rebinding).

Hand-written because it is a few lines over the standard library, and a library's list
would still need these embedded-address cases; tests/oauth/test_oauth_ssrf.py holds it
against oidc-provider's own special-use check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Beyond what ``is_global`` refuses: the whole IETF protocol assignments block (RFC 6890),
# as oidc-provider does, since parts of it (192.0.0.8, ...) count as global in Python.
_ALSO_FORBIDDEN = (ipaddress.ip_network("192.0.0.0/24"),)


class ForbiddenTarget(ValueError):
    """The URI's host is, or resolves to, an address this server does not send to."""


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's (obfuscation undone by the stdlib)
    return None


def is_forbidden_address(address: IPAddress) -> bool:
    """True for loopback, private, link-local, multicast, reserved or any other
    special-purpose address, and for IPv6 forms that carry such an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return True
        inner = _embedded_v4(address)
        if inner is not None:
            return is_forbidden_address(inner)
    elif any(address in network for network in _ALSO_FORBIDDEN):
        return True
    return not address.is_global or address.is_multicast


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where to connect: the checked ``address``, with ``host`` for TLS (SNI and the
    certificate check) and the Host header."""

    url: str
    host: str
    address: str
    port: int


async def pin(uri: str, *, allow_loopback: bool = False) -> PinnedTarget:
    """Resolve ``uri``'s host and check every address; ``ForbiddenTarget`` if any fails.

    With ``allow_loopback`` (JWTAUTH_OAUTH_ALLOW_LOOPBACK), loopback addresses pass too,
    and nothing else that is special does.
    """
    parts = urlsplit(uri)
    host = parts.hostname
    if not host or parts.scheme not in ("https", "http"):
        raise ForbiddenTarget("not an http(s) URI")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ForbiddenTarget(f"{host} does not resolve") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise ForbiddenTarget(f"{host} does not resolve")
    for address in addresses:
        if allow_loopback and address.is_loopback:
            continue
        if is_forbidden_address(address):
            raise ForbiddenTarget(f"{host} resolves to a special-purpose address")
    chosen = addresses[0]
    netloc = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
    return PinnedTarget(url=pinned, host=host, address=str(chosen), port=port)
