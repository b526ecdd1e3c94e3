"""The one way to revoke: a unit of work for every path that ends sessions or tokens.

Logout, logout-all, deleting a session, a password change, deleting a user and refresh-
token reuse all come here. In one transaction: the state change (families revoked, the
user deleted, plus the caller's own change, such as the new password hash), the
revocation log rows and the audit row; so there is no revocation without its record and
no record of one that rolled back. Only after the commit: the listeners (this process's
in-memory ``RevocationList``, the Redis event) and the audit log line.

Where later work slots in: a new kind of revocation (one access token by ``jti``, every
token of an OAuth client, a disabled user) is a new target below, one more case in
``_apply`` and, if it is a new kind of entry, a ``RevocationKind`` member; a new path
that ends sessions (password reset, RP-initiated logout) calls ``Revoker.end`` with a
target, its audit event and perhaps a ``change``; a new consequence of every revocation
(back-channel logout notifications) is one more listener.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, assert_never

from sqlalchemy.ext.asyncio import AsyncConnection

from ...revocation import RevocationKind, RevocationList
from ..audit import AuditEvent, Auditor
from ..store import Database
from ..store.audit import insert_event
from ..store.revocations import record_revocations
from ..store.sessions import revoke_session, revoke_user_sessions
from ..store.users import delete_user


@dataclass(frozen=True, slots=True)
class OneSession:
    """One refresh family and its access tokens (logout, deleting a session, reuse);
    with ``user_id``, only if it is that user's. Nothing happens, audit included, if it
    is not live."""

    session_id: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserSessions:
    """Every live family of a user but ``keep`` (logout-all, a password change). The
    audit row is written even when there is none left to revoke."""

    user_id: str
    keep: str | None = None


@dataclass(frozen=True, slots=True)
class DeletedUser:
    """The user row (sessions and tokens go with it, by cascade) and every access token
    of the user, by ``sub``. Nothing happens if there is no such user."""

    user_id: str


Target = OneSession | UserSessions | DeletedUser
# A state change committed with the revocation; it may raise to roll everything back.
StateChange = Callable[[AsyncConnection, datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Ended:
    """What one unit of work revoked (``values`` may be empty: logout-all of nothing)."""

    kind: RevocationKind
    values: tuple[str, ...]
    until: float  # epoch seconds: when no token it could kill is still alive
    audit: AuditEvent


class RevocationListener(Protocol):
    """Told about every committed revocation (``EventBus.publish_revocations`` is one)."""

    def __call__(self, kind: RevocationKind, values: Iterable[str], until: float) -> None: ...


def remember_in(revocations: RevocationList) -> RevocationListener:
    """The listener that makes this process refuse the revoked tokens at once."""

    def remember(kind: RevocationKind, values: Iterable[str], until: float) -> None:
        for value in values:
            revocations.add(kind, value, until)

    return remember


class Revoker:
    def __init__(
        self,
        db: Database,
        *,
        ttl: int,
        clock: Callable[[], float],
        auditor: Auditor,
        listeners: Sequence[RevocationListener] = (),
    ) -> None:
        self._db = db
        self._ttl = ttl  # the life of any access token a revocation must kill
        self._clock = clock
        self._auditor = auditor
        self._listeners = tuple(listeners)

    async def end(
        self, target: Target, audit: AuditEvent, *, change: StateChange | None = None
    ) -> Ended | None:
        """Revoke ``target`` in a transaction of its own; None if there was nothing to
        end (an unknown or already revoked session, an unknown user)."""
        async with self._db.begin() as conn:
            ended = await self.end_in(conn, target, audit, change=change)
        if ended is not None:
            self.announce(ended)
        return ended

    async def end_in(
        self, conn: AsyncConnection, target: Target, audit: AuditEvent, *,
        change: StateChange | None = None,
    ) -> Ended | None:
        """The same inside the caller's transaction (a rotation that finds reuse); the
        caller commits, then calls ``announce``."""
        stamp = self._clock()
        now = datetime.fromtimestamp(stamp, UTC)
        applied = await self._apply(conn, target, now)
        if applied is None:
            return None  # nothing was written: the change too goes only with a revocation
        kind, values = applied
        if change is not None:
            await change(conn, now)
        await record_revocations(
            conn, kind, values, now=now, expires_at=now + timedelta(seconds=self._ttl)
        )
        await insert_event(conn, audit)
        return Ended(kind, tuple(values), stamp + self._ttl, audit)

    def announce(self, ended: Ended) -> None:
        """After the commit: memory, Redis, and the audit event's log line."""
        if ended.values:
            for listener in self._listeners:
                listener(ended.kind, ended.values, ended.until)
        self._auditor.emit(ended.audit)

    @staticmethod
    async def _apply(
        conn: AsyncConnection, target: Target, now: datetime
    ) -> tuple[RevocationKind, list[str]] | None:
        match target:
            case OneSession(session_id, user_id):
                ended = await revoke_session(conn, session_id, now, user_id=user_id)
                return (RevocationKind.SESSION, ended) if ended else None
            case UserSessions(user_id, keep):
                return RevocationKind.SESSION, await revoke_user_sessions(
                    conn, user_id, now, keep=keep
                )
            case DeletedUser(user_id):
                if not await delete_user(conn, user_id):
                    return None
                return RevocationKind.USER, [user_id]
            case _:
                assert_never(target)
