"""Authorization codes: single use, 60 s, bound to client, redirect URI and PKCE
challenge (RFC 6749 4.1.2 and 10.5, RFC 7636, RFC 9700 4.2.4 and 4.5).

A code is 256 random bits, stored only as its SHA-256. ``redeem`` claims it first (one
winner, in the store) and checks it after, so a code presented by the wrong client, with
the wrong redirect URI or verifier, is spent too: whoever holds a stolen code gets one
try. A second use is answered ``invalid_grant`` and returned as ``Replay``: the caller
revokes what the first use issued (the family, if it exists yet, else the first use
learns of the replay when it binds its family, and revokes it then).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import pkce
from .errors import InvalidGrantError
from .ports import ClaimOutcome, CodeRecord, CodeRepository, SignIn


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    """A reused code: ``family_id`` is what its first use created (None if not yet)."""

    family_id: str | None


async def issue_code(
    codes: CodeRepository, *, client_id: str, signin: SignIn, redirect_uri: str,
    scope: tuple[str, ...], code_challenge: str, nonce: str | None, resource: str | None,
    now: datetime, ttl: int,
) -> str:
    code = secrets.token_urlsafe(32)
    await codes.add(CodeRecord(
        code_hash=hash_code(code), client_id=client_id, user_id=signin.user_id,
        redirect_uri=redirect_uri, scope=scope, code_challenge=code_challenge, nonce=nonce,
        resource=resource, signin_sid=signin.session_id, auth_time=signin.auth_time,
        amr=signin.amr, acr=signin.acr, expires_at=now + timedelta(seconds=ttl),
    ), now=now)
    return code


async def redeem_code(
    codes: CodeRepository, code: str | None, *, client_id: str, redirect_uri: str | None,
    code_verifier: str | None, now: datetime,
) -> CodeRecord | Replay:
    """The code's record when this is its one good use; a ``Replay`` for a second use
    (answer ``invalid_grant`` after revoking); ``InvalidGrantError`` otherwise."""
    if not code or len(code) > 256:
        raise InvalidGrantError("code is missing or malformed.")
    claim = await codes.claim(hash_code(code), now=now)
    if claim.outcome is ClaimOutcome.UNKNOWN:
        raise InvalidGrantError("The code is unknown or expired.")
    if claim.outcome is ClaimOutcome.REPLAYED:
        return Replay(claim.family_id)
    record = claim.code
    assert record is not None
    if record.expires_at <= now:
        raise InvalidGrantError("The code has expired.")
    if record.client_id != client_id:
        # RFC 9700 4.5 (code injection): a code is only ever good for its own client.
        raise InvalidGrantError("The code was issued to another client.")
    if redirect_uri != record.redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the authorization request's.")
    pkce.verify(code_verifier, record.code_challenge)
    return record
