"""``RevocationList``: what is revoked, held in memory; entries are forgotten once harmless,
and a list nobody has vouched for lately refuses every token (fail closed). How the server
fills it is tests/test_revocation.py; how a RevocationFeed does, tests/test_events.py."""

from __future__ import annotations

import pytest

from jwtauth import InvalidToken, Verifier
from jwtauth.claims import Claims
from jwtauth.revocation import RevocationKind, RevocationList

from .kit import AUDIENCE, ISSUER, Clock, key_for, token

ACCESS_TTL = 900
CLOCK_SKEW = 30


def claims(*, sub: str = "user-1", sid: str | None = "session-1") -> Claims:
    return Claims(sub=sub, sid=sid, jti="j", roles=("user",), iss="i", exp=0, iat=0)


def test_revocation_list_forgets_entries_after_access_ttl_plus_skew() -> None:
    clock = Clock()
    revocations = RevocationList(clock)
    until = clock() + ACCESS_TTL + CLOCK_SKEW
    revocations.add(RevocationKind.SESSION, "session-1", until)
    revocations.add(RevocationKind.USER, "user-2", until)
    assert revocations.is_revoked(claims(sid="session-1"))
    assert revocations.is_revoked(claims(sub="user-2", sid="other"))
    assert not revocations.is_revoked(claims(sub="user-3", sid="other"))
    clock.advance(ACCESS_TTL + CLOCK_SKEW - 1)
    assert revocations.is_revoked(claims(sid="session-1"))
    assert len(revocations) == 2
    clock.advance(2)
    assert not revocations.is_revoked(claims(sid="session-1"))
    assert not revocations.is_revoked(claims(sub="user-2", sid="other"))
    assert len(revocations) == 0


def test_revocation_list_keeps_the_later_expiry() -> None:
    clock = Clock()
    revocations = RevocationList(clock)
    revocations.add(RevocationKind.SESSION, "session-1", clock() + 100)
    revocations.add(RevocationKind.SESSION, "session-1", clock() + 10)
    clock.advance(50)
    assert revocations.is_revoked(claims(sid="session-1"))


def test_claims_without_sid_match_no_session_entry() -> None:
    clock = Clock()
    revocations = RevocationList(clock)
    for name in ("None", "", "null"):
        revocations.add(RevocationKind.SESSION, name, clock() + 100)
    assert not revocations.is_revoked(claims(sid=None))
    revocations.add(RevocationKind.USER, "user-1", clock() + 100)
    assert revocations.is_revoked(claims(sid=None))


def test_a_revocation_list_not_confirmed_lately_refuses_every_token() -> None:
    moment = [100.0]
    clock = Clock()
    revocations = RevocationList(clock, max_staleness=5, monotonic=lambda: moment[0])
    key = key_for("HS256")
    verifier = Verifier.from_keys([key], issuer=ISSUER, audience=AUDIENCE,
                                  revocations=revocations, clock=clock)
    signed = token(key, clock, sub="u1")
    with pytest.raises(InvalidToken) as never:
        verifier.verify_sync(signed)
    assert never.value.reason == "revocations unavailable"
    revocations.confirm()
    moment[0] += 5
    assert verifier.verify_sync(signed).sub == "u1"
    moment[0] += 0.1
    with pytest.raises(InvalidToken) as stale:
        verifier.verify_sync(signed)
    assert stale.value.reason == "revocations unavailable"
