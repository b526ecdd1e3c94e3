"""Refresh-token rotation: the typed outcomes, and the grace and reuse rule.

API.md "Refresh token": every use rotates. A rotated-away token presented again is
reuse and revokes the whole family, except within ``JWTAUTH_REFRESH_REUSE_GRACE``
seconds of its rotation: then a second tab gets the same successor as the first while
that successor is unused, and once it has been used the rotated-away token gets 401 and
the family lives on (a late duplicate of a retried request is not theft, and its caller
learns nothing new). ``judge`` is that rule, as plain code over what the store found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from ..audit import AuditEvent
from ..store import sessions as store
from .revocation import Ended, OneSession, Revoker
from .tokens import hash_refresh_token, is_refresh_token_shaped, open_successor, seal_successor


@dataclass(frozen=True, slots=True)
class Renewal:
    """A refresh that succeeds: the family and the refresh token the client uses next."""

    session_id: str
    user_id: str
    username: str
    roles: list[str]
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Rotated(Renewal):
    """The presented token was current: this request rotated it."""


@dataclass(frozen=True, slots=True)
class Grace(Renewal):
    """Rotated moments ago by another request: the same successor again."""


@dataclass(frozen=True, slots=True)
class Reused:
    """A rotated-away token came back: the family is now revoked."""

    session_id: str
    user_id: str
    username: str


InvalidReason = Literal["malformed", "unknown", "expired", "revoked", "late_duplicate"]


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: InvalidReason


Outcome = Rotated | Grace | Reused | Invalid


def judge(
    found: store.PresentedToken | None, presented: str, *, now: datetime, grace: int
) -> Grace | Reused | Invalid:
    """What presenting a token that could not be claimed (it was not current) means."""
    if found is None or found.used_at is None:
        return Invalid("unknown")
    if found.family_revoked:
        return Invalid("revoked")
    if grace > 0 and now - found.used_at <= timedelta(seconds=grace):
        # Inside the window nothing is reuse: the successor again, or a plain refusal.
        if found.successor_used_at is not None:
            return Invalid("late_duplicate")  # a retried request, finally served
        expires, sealed = found.successor_expires_at, found.successor_sealed
        if expires is None or expires <= now or not sealed:
            return Invalid("expired")
        token = open_successor(sealed, presented)
        return Grace(found.session_id, found.user_id, found.username, found.roles, token, expires)
    return Reused(found.session_id, found.user_id, found.username)


class Rotator:
    def __init__(
        self, sessions: store.SessionStore, revoker: Revoker, *, ttl: int, grace: int
    ) -> None:
        self._sessions = sessions
        self._revoker = revoker
        self._ttl = timedelta(seconds=ttl)
        self._grace = grace

    async def rotate(
        self, presented: str, new_token: str, *, now: datetime, reuse_audit: AuditEvent
    ) -> Outcome:
        """Present a refresh token. ``new_token`` becomes its successor if it was current;
        ``reuse_audit`` is written with the family's revocation if this is reuse."""
        if not is_refresh_token_shaped(presented):
            return Invalid("malformed")
        presented_hash = hash_refresh_token(presented)
        new_hash = hash_refresh_token(new_token)
        ended: Ended | None = None
        async with self._sessions.rotation() as conn:
            claimed = await store.claim(
                conn, presented_hash, now=now, successor_hash=new_hash,
                successor_sealed=seal_successor(new_token, presented),
            )
            outcome: Outcome
            if claimed is not None:
                outcome = await self._extend(conn, claimed, new_token, new_hash, now)
            else:
                found = await store.find_presented(conn, presented_hash)
                outcome = judge(found, presented, now=now, grace=self._grace)
                if isinstance(outcome, Reused):
                    attributed = reuse_audit.about(
                        user_id=outcome.user_id, username=outcome.username,
                        session_id=outcome.session_id,
                    )
                    ended = await self._revoker.end_in(
                        conn, OneSession(outcome.session_id), attributed
                    )
            if isinstance(outcome, Rotated | Reused):
                await conn.commit()
            else:
                await conn.rollback()  # a lost claim, or a grace answer: nothing to keep
        if ended is not None:
            self._revoker.announce(ended)
        return outcome

    async def _extend(
        self, conn: AsyncConnection, claimed: store.Claimed, new_token: str,
        new_hash: str, now: datetime,
    ) -> Rotated | Invalid:
        if claimed.expires_at <= now:
            return Invalid("expired")
        family = await store.extend_family(conn, claimed.session_id, now)
        if family is None:
            return Invalid("expired")  # revoked, or past its absolute cap
        expires_at = min(now + self._ttl, family.expires_at)
        await store.add_token(conn, new_hash, claimed.session_id, now=now, expires_at=expires_at)
        return Rotated(
            claimed.session_id, family.user_id, family.username, family.roles, new_token,
            expires_at,
        )
