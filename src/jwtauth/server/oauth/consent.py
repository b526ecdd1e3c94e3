"""Consent: remembered per user and client as the union of what the user granted, and
asked again only for what the request adds (or when ``prompt=consent`` says so).

The consent form is bound to the browser's sign-in session and to the very request it
shows (an HMAC over both), so another site cannot make a signed-in browser submit
``decision=allow`` for a request the user never saw (RFC 9700 4.4.1.8, CSRF). The
``SameSite=Lax`` sign-in cookie already keeps a cross-site POST from carrying the
session; the token holds even where that does not.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from .clients import ClientMetadata
from .scopes import OPENID


def missing_consent(
    client: ClientMetadata, requested: Iterable[str], granted: frozenset[str], *,
    prompt_consent: bool,
) -> tuple[str, ...]:
    """The scopes the user must still agree to (empty: no consent page)."""
    requested = tuple(requested)
    if client.skip_consent and not prompt_consent:
        return ()
    if prompt_consent:
        return requested
    # openid alone releases nothing but the subject; it still needs one consent.
    return tuple(s for s in requested if s not in granted or (s == OPENID and not granted))


def consent_token(secret: bytes, *, signin_sid: str, auth_time: int, request: str) -> str:
    """The hidden field of a consent form: bound to the sign-in session (and sign-in
    moment, so a new sign-in voids old forms) and to the canonical request."""
    message = b"\x00".join((b"consent-v1", signin_sid.encode(), str(auth_time).encode(),
                            request.encode()))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def consent_token_matches(secret: bytes, presented: str | None, *, signin_sid: str,
                          auth_time: int, request: str) -> bool:
    expected = consent_token(secret, signin_sid=signin_sid, auth_time=auth_time,
                             request=request)
    return presented is not None and hmac.compare_digest(presented, expected)
