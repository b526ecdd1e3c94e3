"""Queries on refresh-token families: create, rotate (atomically), revoke.

Rotation is a single conditional UPDATE (``used_at IS NULL``) that only one of any number
of concurrent requests can win, on SQLite (one writer at a time) and PostgreSQL (row
lock, then the WHERE is re-evaluated) alike. Everything a rotation or a revocation
changes, the revocation log entry included, commits in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...revocation import RevocationKind
from ..audit import AuditEvent
from ..sessions import hash_refresh_token, open_successor, seal_successor
from .audit import insert_event
from .database import Database
from .revocations import record_revocation
from .tables import refresh_tokens as rt
from .tables import sessions, users


class Outcome(StrEnum):
    ROTATED = "rotated"
    GRACE = "grace"  # a second tab inside the reuse grace window: same successor
    REUSED = "reused"  # a rotated-away token came back: the family is now revoked
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class RotateResult:
    outcome: Outcome
    session_id: str | None = None
    user_id: str | None = None
    token: str | None = None
    expires_at: datetime | None = None
    username: str | None = None
    roles: list[str] | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None


def _session_with_user(session_id: str) -> sa.Select[Any]:
    # The user's name and roles come along, so a refresh needs no second query for them.
    return (
        sa.select(sessions, users.c.username, users.c.roles)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id == session_id)
    )


# Prebuilt (bound by name at execution): a refresh builds no statement objects.
_CLAIM = (
    rt.update()
    .where(rt.c.token_hash == sa.bindparam("b_presented"), rt.c.used_at.is_(None))
    .values(
        used_at=sa.bindparam("b_now"),
        successor_hash=sa.bindparam("b_successor"),
        successor_sealed=sa.bindparam("b_sealed"),
    )
    .returning(rt.c.session_id, rt.c.expires_at)
)
_TOUCH_SESSION = (
    sessions.update()
    .where(
        sessions.c.id == sa.bindparam("b_session"),
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > sa.bindparam("b_now"),
    )
    .values(last_used_at=sa.bindparam("b_now"))
    .returning(
        sessions.c.user_id,
        sessions.c.expires_at,
        # The name and roles come along: no further query, inside or after the lock.
        sa.select(users.c.username).where(users.c.id == sessions.c.user_id)
        .scalar_subquery().label("username"),
        sa.select(users.c.roles).where(users.c.id == sessions.c.user_id)
        .scalar_subquery().label("roles"),
    )
)
_ADD_TOKEN = rt.insert()  # the columns are the parameters' names
_ADD_SESSION = sessions.insert()


class SessionStore:
    def __init__(self, db: Database, *, revocation_ttl: int) -> None:
        self._db = db
        self._revocation_ttl = timedelta(seconds=revocation_ttl)

    async def create(
        self,
        *,
        user_id: str,
        token: str,
        now: datetime,
        ttl: int,
        absolute_ttl: int,
        user_agent: str | None,
        client_ip: str | None,
    ) -> str:
        session_id = str(uuid.uuid4())
        cap = now + timedelta(seconds=absolute_ttl)
        async with self._db.begin() as conn:
            await conn.execute(_ADD_SESSION, {
                "id": session_id, "user_id": user_id, "created_at": now, "last_used_at": now,
                "expires_at": cap, "user_agent": (user_agent or "")[:512] or None,
                "client_ip": client_ip,
            })
            await conn.execute(_ADD_TOKEN, {
                "token_hash": hash_refresh_token(token), "session_id": session_id,
                "created_at": now, "expires_at": min(now + timedelta(seconds=ttl), cap),
            })
        return session_id

    async def rotate(
        self, presented: str, *, new_token: str, now: datetime, ttl: int, grace: int,
        audit: AuditEvent | None = None,
    ) -> RotateResult:
        """``audit``: the reuse event, written with the family's revocation if reuse
        is what this turns out to be."""
        presented_hash = hash_refresh_token(presented)
        new_hash = hash_refresh_token(new_token)
        sealed = seal_successor(new_token, presented)
        async with self._db.serialized(), self._db.connect() as conn:
            # The write comes first: it takes SQLite's write lock before any read, so no
            # transaction ever upgrades from a stale snapshot. The happy path is three
            # prebuilt statements and the commit: on SQLite each is a round trip through
            # aiosqlite's thread while the writer lock is held (bench/README.md).
            won = (
                await conn.execute(_CLAIM, {
                    "b_presented": presented_hash, "b_now": now, "b_successor": new_hash,
                    "b_sealed": sealed,
                })
            ).first()
            if won is not None:
                result = await self._finish_rotation(
                    conn, won.session_id, won.expires_at, new_token, new_hash, now=now, ttl=ttl
                )
            else:
                result = await self._not_current(
                    conn, presented, presented_hash, now, grace, audit
                )
            if result.outcome in (Outcome.ROTATED, Outcome.REUSED):
                await conn.commit()
            else:
                await conn.rollback()
        return result

    async def _finish_rotation(
        self, conn: AsyncConnection, session_id: str, token_expires: datetime,
        new_token: str, new_hash: str, *, now: datetime, ttl: int,
    ) -> RotateResult:
        if token_expires <= now:
            return RotateResult(Outcome.INVALID)
        # Checks the family is live and marks it used in one statement.
        session = (
            await conn.execute(_TOUCH_SESSION, {"b_session": session_id, "b_now": now})
        ).first()
        if session is None or session.username is None:
            return RotateResult(Outcome.INVALID)
        expires_at = min(now + timedelta(seconds=ttl), session.expires_at)
        await conn.execute(_ADD_TOKEN, {
            "token_hash": new_hash, "session_id": session_id, "created_at": now,
            "expires_at": expires_at,
        })
        return RotateResult(
            Outcome.ROTATED, session_id, session.user_id, new_token, expires_at,
            session.username, list(session.roles),
        )

    async def _not_current(
        self, conn: AsyncConnection, presented: str, presented_hash: str, now: datetime,
        grace: int, audit: AuditEvent | None,
    ) -> RotateResult:
        old = (await conn.execute(rt.select().where(rt.c.token_hash == presented_hash))).first()
        if old is None or old.used_at is None:
            return RotateResult(Outcome.INVALID)
        session = (await conn.execute(_session_with_user(old.session_id))).first()
        if session is None or session.revoked_at is not None:
            return RotateResult(Outcome.INVALID)
        if grace > 0 and now - old.used_at <= timedelta(seconds=grace) and old.successor_hash:
            successor = (
                await conn.execute(rt.select().where(rt.c.token_hash == old.successor_hash))
            ).first()
            # Hand out the successor only while it is itself unused and alive; otherwise
            # the old token is plain reuse.
            if successor is not None and successor.used_at is None and successor.expires_at > now:
                token = open_successor(old.successor_sealed, presented)
                return RotateResult(
                    Outcome.GRACE, session.id, session.user_id, token, successor.expires_at,
                    session.username, list(session.roles),
                )
        await self._revoke(conn, [session.id], now)
        if audit is not None:
            await insert_event(
                conn, audit.about(user_id=session.user_id, username=session.username,
                                  session_id=session.id),
            )
        return RotateResult(Outcome.REUSED, session.id, session.user_id, username=session.username)

    async def _revoke(self, conn: AsyncConnection, session_ids: list[str], now: datetime) -> None:
        if not session_ids:
            return
        await conn.execute(
            sessions.update()
            .where(sessions.c.id.in_(session_ids), sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        for session_id in session_ids:
            await record_revocation(
                conn, kind=RevocationKind.SESSION, value=session_id, now=now,
                expires_at=now + self._revocation_ttl,
            )

    async def revoke(
        self, session_id: str, now: datetime, *, user_id: str | None = None,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Revoke one family; with ``user_id``, only if it belongs to that user. The
        ``audit`` event commits with the revocation."""
        query = sa.select(sessions.c.id).where(
            sessions.c.id == session_id, sessions.c.revoked_at.is_(None)
        )
        if user_id is not None:
            query = query.where(sessions.c.user_id == user_id)
        async with self._db.begin() as conn:
            found = (await conn.execute(query)).first()
            if found is None:
                return False
            await self._revoke(conn, [session_id], now)
            if audit is not None:
                await insert_event(conn, audit)
        return True

    async def revoke_all(
        self, user_id: str, now: datetime, *, keep: str | None = None,
        audit: AuditEvent | None = None,
    ) -> list[str]:
        query = sa.select(sessions.c.id).where(
            sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(sessions.c.id != keep)
        async with self._db.begin() as conn:
            ids = list((await conn.execute(query)).scalars())
            await self._revoke(conn, ids, now)
            if audit is not None:
                await insert_event(conn, audit)
        return ids

    async def session_of_token(self, token: str) -> tuple[str, str] | None:
        """(session id, user id) of any refresh token ever issued, current or not."""
        query = (
            sa.select(sessions.c.id, sessions.c.user_id)
            .join(rt, rt.c.session_id == sessions.c.id)
            .where(rt.c.token_hash == hash_refresh_token(token))
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.id, row.user_id) if row else None

    async def live_for_user(self, user_id: str, now: datetime) -> list[SessionRecord]:
        alive_token = (
            sa.select(rt.c.token_hash)
            .where(rt.c.session_id == sessions.c.id, rt.c.used_at.is_(None), rt.c.expires_at > now)
            .exists()
        )
        query = (
            sessions.select()
            .where(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
                alive_token,
            )
            .order_by(sessions.c.last_used_at.desc())
        )
        async with self._db.connect() as conn:
            return [
                SessionRecord(r.id, r.user_id, r.created_at, r.last_used_at, r.user_agent)
                for r in await conn.execute(query)
            ]
