"""Queries on refresh-token families: create, the statements of a rotation, revoke.

Only SQL lives here; what a presented token means (rotated, grace, reuse) is decided in
``sessions/rotation.py``. Rotation claims a token with a single conditional UPDATE
(``used_at IS NULL``) that only one of any number of concurrent requests can win, on
SQLite (one writer at a time) and PostgreSQL (row lock, then the WHERE is re-evaluated)
alike. Revocation is an ``UPDATE ... WHERE revoked_at IS NULL RETURNING id``: of two
concurrent revocations of one family exactly one reports it, so it is logged and audited
once.

Every statement a refresh or a login runs is built once at import and bound by name at
execution: building SQLAlchemy statements costs more CPU than the query (bench/README.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .tables import refresh_tokens as rt
from .tables import sessions, users


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A token this request has just marked used (it won the rotation)."""

    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LiveFamily:
    """The family a claimed token belongs to, still live and now marked used."""

    user_id: str
    expires_at: datetime  # the absolute cap
    username: str
    roles: list[str]


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A token that could not be claimed: its family, and the successor it was rotated to."""

    used_at: datetime | None
    session_id: str
    user_id: str
    username: str
    roles: list[str]
    family_revoked: bool
    successor_sealed: str | None
    successor_used_at: datetime | None
    successor_expires_at: datetime | None  # None when there is no successor row


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
_successor = rt.alias("successor")
# One round trip for everything the rule needs about a token that was not current.
_PRESENTED = (
    sa.select(
        rt.c.used_at, rt.c.successor_sealed, sessions.c.id, sessions.c.user_id,
        sessions.c.revoked_at, users.c.username, users.c.roles,
        _successor.c.used_at.label("successor_used_at"),
        _successor.c.expires_at.label("successor_expires_at"),
    )
    .select_from(
        rt.join(sessions, sessions.c.id == rt.c.session_id)
        .join(users, users.c.id == sessions.c.user_id)
        .outerjoin(_successor, _successor.c.token_hash == rt.c.successor_hash)
    )
    .where(rt.c.token_hash == sa.bindparam("b_presented"))
)
_ADD_TOKEN = rt.insert()  # the columns are the parameters' names
_ADD_SESSION = sessions.insert()


def _revoking(*conditions: sa.ColumnElement[bool]) -> Any:
    return (
        sessions.update()
        .where(sessions.c.revoked_at.is_(None), *conditions)
        .values(revoked_at=sa.bindparam("b_now"))
        .returning(sessions.c.id)
    )


_REVOKE_ONE = _revoking(sessions.c.id == sa.bindparam("b_session"))
_REVOKE_ONE_OF_USER = _revoking(
    sessions.c.id == sa.bindparam("b_session"), sessions.c.user_id == sa.bindparam("b_user")
)
_REVOKE_ALL = _revoking(sessions.c.user_id == sa.bindparam("b_user"))
_REVOKE_ALL_BUT = _revoking(
    sessions.c.user_id == sa.bindparam("b_user"), sessions.c.id != sa.bindparam("b_keep")
)


async def claim(
    conn: AsyncConnection, presented_hash: str, *, now: datetime, successor_hash: str,
    successor_sealed: str,
) -> Claimed | None:
    row = (await conn.execute(_CLAIM, {
        "b_presented": presented_hash, "b_now": now, "b_successor": successor_hash,
        "b_sealed": successor_sealed,
    })).first()
    return Claimed(row.session_id, row.expires_at) if row is not None else None


async def extend_family(conn: AsyncConnection, session_id: str, now: datetime) -> LiveFamily | None:
    """Mark the family used now, if it is live (one statement: check and write)."""
    row = (await conn.execute(_TOUCH_SESSION, {"b_session": session_id, "b_now": now})).first()
    if row is None or row.username is None:
        return None
    return LiveFamily(row.user_id, row.expires_at, row.username, list(row.roles))


async def add_token(
    conn: AsyncConnection, token_hash: str, session_id: str, *, now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(_ADD_TOKEN, {
        "token_hash": token_hash, "session_id": session_id, "created_at": now,
        "expires_at": expires_at,
    })


async def find_presented(conn: AsyncConnection, presented_hash: str) -> PresentedToken | None:
    row = (await conn.execute(_PRESENTED, {"b_presented": presented_hash})).first()
    if row is None:
        return None
    return PresentedToken(
        used_at=row.used_at, session_id=row.id, user_id=row.user_id, username=row.username,
        roles=list(row.roles), family_revoked=row.revoked_at is not None,
        successor_sealed=row.successor_sealed,
        successor_used_at=row.successor_used_at, successor_expires_at=row.successor_expires_at,
    )


async def revoke_session(
    conn: AsyncConnection, session_id: str, now: datetime, *, user_id: str | None = None
) -> list[str]:
    """Revoke one live family (with ``user_id``: only if it is that user's). Its id, if
    this call revoked it; else nothing."""
    if user_id is None:
        result = await conn.execute(_REVOKE_ONE, {"b_session": session_id, "b_now": now})
    else:
        result = await conn.execute(
            _REVOKE_ONE_OF_USER, {"b_session": session_id, "b_user": user_id, "b_now": now}
        )
    return list(result.scalars())


async def revoke_user_sessions(
    conn: AsyncConnection, user_id: str, now: datetime, *, keep: str | None = None
) -> list[str]:
    """Revoke every live family of a user but ``keep``; the ids this call revoked."""
    if keep is None:
        result = await conn.execute(_REVOKE_ALL, {"b_user": user_id, "b_now": now})
    else:
        result = await conn.execute(
            _REVOKE_ALL_BUT, {"b_user": user_id, "b_keep": keep, "b_now": now}
        )
    return list(result.scalars())


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, *, user_id: str, token_hash: str, now: datetime, ttl: int, absolute_ttl: int,
        user_agent: str | None, client_ip: str | None,
    ) -> str:
        session_id = str(uuid.uuid4())
        cap = now + timedelta(seconds=absolute_ttl)
        async with self._db.begin() as conn:
            await conn.execute(_ADD_SESSION, {
                "id": session_id, "user_id": user_id, "created_at": now, "last_used_at": now,
                "expires_at": cap, "user_agent": (user_agent or "")[:512] or None,
                "client_ip": client_ip,
            })
            await add_token(
                conn, token_hash, session_id, now=now,
                expires_at=min(now + timedelta(seconds=ttl), cap),
            )
        return session_id

    @asynccontextmanager
    async def rotation(self) -> AsyncIterator[AsyncConnection]:
        """The transaction of one rotation; the caller commits (else it rolls back).

        The claim must be its first statement: it takes SQLite's write lock before any
        read, so no transaction ever upgrades from a stale snapshot. On SQLite each
        statement is a round trip through aiosqlite's thread while the writer lock is
        held, which is why the happy path is three prebuilt statements and the commit.
        """
        async with self._db.serialized(), self._db.connect() as conn:
            yield conn

    async def session_of_token(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, user id) of any refresh token ever issued, current or not."""
        query = (
            sa.select(sessions.c.id, sessions.c.user_id)
            .join(rt, rt.c.session_id == sessions.c.id)
            .where(rt.c.token_hash == token_hash)
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
