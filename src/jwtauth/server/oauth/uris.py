"""Redirect, post-logout and back-channel URIs: what may be registered, and matching.

The rules are API.md's, after RFC 9700 section 4.1.3 and RFC 8252:
- registered URIs are absolute, https, without fragment or user info; ``http`` is allowed
  only for loopback hosts of native clients (``127.0.0.1``, ``[::1]``, ``localhost``),
  or for every client when JWTAUTH_OAUTH_ALLOW_LOOPBACK is on (development and tests);
- a presented URI matches a registered one by exact string comparison, with no
  normalisation at all (no case folding, no percent-decoding, no default port), so a
  longer path, another port or an encoded variant never matches;
- the one exception: a native client's loopback URI may differ in its port (RFC 8252
  section 7.3), everything else still compared exactly.

Written here rather than taken from a library: the checks are a dozen lines of
``urllib.parse`` and each is a policy decision of this server (Authlib's
``ClientMetadataClaims`` checks URI syntax only; its server grants are sync and bound to
its request objects).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal
from urllib.parse import SplitResult, urlsplit

ApplicationType = Literal["web", "native"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
MAX_URI_LENGTH = 2000


class URIRuleError(ValueError):
    """A URI that may not be registered; the message says why."""


def _split(uri: str) -> SplitResult:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise URIRuleError("must be a URI of at most 2000 characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise URIRuleError("must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise URIRuleError("is not a valid URI") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise URIRuleError("must be an absolute https URI")
    if parts.fragment or "#" in uri:
        raise URIRuleError("must not contain a fragment (RFC 6749 3.1.2)")
    if "@" in parts.netloc:
        raise URIRuleError("must not contain user information")
    return parts


def _raw_host(parts: SplitResult) -> str:
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.partition(":")[0]


def _host(parts: SplitResult) -> str:
    return _raw_host(parts).lower()


def is_loopback(uri: str) -> bool:
    try:
        return _host(_split(uri)) in LOOPBACK_HOSTS
    except URIRuleError:
        return False


def validate_redirect_uri(
    uri: str, *, application_type: ApplicationType, allow_loopback: bool
) -> str:
    """``uri`` if a client of this type may register it; ``URIRuleError`` otherwise."""
    parts = _split(uri)
    if parts.scheme == "http":
        if _host(parts) not in LOOPBACK_HOSTS:
            raise URIRuleError("must be https (http only for a loopback address)")
        if application_type != "native" and not allow_loopback:
            raise URIRuleError("http loopback URIs are for native clients only (RFC 8252)")
    return uri


def validate_backchannel_uri(uri: str, *, allow_loopback: bool) -> str:
    """A back-channel logout URI: https; an address literal must be a public one.

    Names are resolved and checked again when a logout token is sent (``ssrf.py``);
    this refuses what is wrong already at registration.
    """
    from .ssrf import is_forbidden_address

    parts = _split(uri)
    host = _host(parts)
    if parts.scheme == "http" and not (allow_loopback and host in LOOPBACK_HOSTS):
        raise URIRuleError("must be https")
    if parts.query and len(parts.query) > 500:
        raise URIRuleError("has too long a query")
    if not allow_loopback:
        if host == "localhost" or host.endswith(".localhost"):
            raise URIRuleError("must not name a loopback host")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return uri  # a name: checked when resolved
        if is_forbidden_address(address):
            raise URIRuleError("must not name a loopback, private or link-local address")
    return uri


def _without_port(uri: str) -> str | None:
    """The URI with its port removed, for a loopback http URI; None for any other."""
    try:
        parts = _split(uri)
    except URIRuleError:
        return None
    # The host as written: an exact comparison folds no case, even here.
    host = _raw_host(parts)
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS:
        return None
    return parts._replace(netloc=host).geturl()


def match_redirect_uri(
    presented: str, registered: Iterable[str], *, application_type: ApplicationType
) -> str | None:
    """The registered URI that ``presented`` matches, or None.

    Exact string match; for native clients a loopback URI may also differ in its port.
    The presented URI is returned on a port-varied match: that is where the client waits.
    """
    registered = list(registered)
    if presented in registered:
        return presented
    if application_type != "native":
        return None
    bare = _without_port(presented)
    if bare is None:
        return None
    for uri in registered:
        if _without_port(uri) == bare:
            return presented
    return None
