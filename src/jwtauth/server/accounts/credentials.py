"""Proving who one is, and changing the proof: login (with its limits) and password
change (which ends the user's other sessions, in the one revocation unit of work)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from ...claims import Claims
from ...errors import InvalidCredentials, WrongPassword
from ..attempts import admit
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..passwords import PasswordHasher, validate_new_password
from ..ratelimit import LoginLimiter
from ..sessions import Revoker, SessionService, TokenPair, UserSessions
from ..store.users import UserStore, replace_password_hash


class Credentials:
    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        limiter: LoginLimiter,
        sessions: SessionService,
        revoker: Revoker,
        auditor: Auditor,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._limiter = limiter
        self._sessions = sessions
        self._revoker = revoker
        self._audit = auditor
        self._now = now

    async def login(self, username: str, password: str, client: Client) -> TokenPair:
        # Checked and counted before the hash, in one step: a concurrent burst gets
        # exactly the attempts the limits allow (ratelimit.py).
        attempt = await admit(self._limiter, self._audit, username, client)
        user = await self._users.by_username(username)
        ok, new_hash = await self._hasher.verify(user.password_hash if user else None, password)
        if not ok or user is None:
            # The attempted name (never the password); the same write whether or not
            # the account exists, so the audit adds no timing difference.
            await self._audit.record(
                Audit.LOGIN_FAILED, user_id=user.id if user else None, username=username,
                client=client,
            )
            raise InvalidCredentials()
        await self._limiter.succeeded(attempt)
        if new_hash is not None:
            await self._users.set_password_hash(user.id, new_hash, self._now())
        session_id, pair = await self._sessions.start(
            user_id=user.id, username=user.username, roles=user.roles, client=client
        )
        await self._audit.record(
            Audit.LOGIN_SUCCEEDED, user_id=user.id, username=user.username,
            session_id=session_id, client=client,
        )
        return pair

    async def change_password(
        self, claims: Claims, current: str, new: str, client: Client | None = None
    ) -> None:
        """Set a new password and end every other session of the user, in one
        transaction with the audit row (API.md: other sessions revoked)."""
        user = await self._users.by_id(claims.sub)
        if user is None:
            raise InvalidCredentials()
        # The current password counts in the login limits: no side door for guessing.
        attempt = None if client is None else await admit(
            self._limiter, self._audit, user.username, client, user_id=user.id,
            via="password_change",
        )
        ok, _ = await self._hasher.verify(user.password_hash, current)
        if not ok:
            await self._audit.record(
                Audit.PASSWORD_CHANGE_FAILED, user_id=user.id, username=user.username,
                session_id=claims.sid, client=client,
            )
            raise WrongPassword()
        if attempt is not None:
            await self._limiter.succeeded(attempt)
        validate_new_password(new, username=user.username)
        new_hash = await self._hasher.hash(new)

        async def store_hash(conn: AsyncConnection, now: datetime) -> None:
            if not await replace_password_hash(conn, user.id, new_hash, now):
                raise InvalidCredentials()  # deleted meanwhile: nothing is kept

        event = self._audit.event(
            Audit.PASSWORD_CHANGED, user_id=user.id, username=user.username,
            session_id=claims.sid, client=client,
        )
        await self._revoker.end(UserSessions(user.id, keep=claims.sid), event, change=store_hash)
