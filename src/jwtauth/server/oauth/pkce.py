"""PKCE (RFC 7636) with S256 only, as OAuth 2.1 and API.md require of every client.

Seven lines of hashlib: Authlib's helper is the same computation (the tests use it as
the independent implementation), not worth a server dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from .errors import InvalidGrantError, InvalidRequestError

# RFC 7636 4.1: code_verifier = 43*128unreserved; 4.2: S256 gives 43 base64url characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_challenge(challenge: str | None, method: str | None) -> str:
    """The challenge of an authorization request; ``plain`` and a missing method (which
    RFC 7636 reads as plain) are refused, as is a missing challenge (downgrade)."""
    if not challenge:
        raise InvalidRequestError("code_challenge is required (PKCE).", field="code_challenge")
    if method != "S256":
        raise InvalidRequestError(
            "code_challenge_method must be S256.", field="code_challenge_method"
        )
    if not _CHALLENGE.match(challenge):
        raise InvalidRequestError("code_challenge is malformed.", field="code_challenge")
    return challenge


def verify(verifier: str | None, challenge: str) -> None:
    """``InvalidGrantError`` unless ``verifier`` is the one behind ``challenge``."""
    if not verifier or not _VERIFIER.match(verifier):
        raise InvalidGrantError("code_verifier is missing or malformed.")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge.")
