"""AuthService: what the HTTP routes call, accounts and sessions, with no web types.

It holds no logic of its own beyond choosing the part that does the work (``accounts/``,
``sessions/``, the audit reader) and takes every part from the wiring (``wiring.py``),
so two differently configured services can live in one process (the tests build one per
test). Nothing reaches through it: what a route needs is a method here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..claims import Claims
from ..keys import Keyring
from ..verifier import Verifier
from .accounts.admin import UserAdmin
from .audit import AuditEvent, AuditEventName
from .config import Settings
from .sessions import SessionService, TokenPair
from .store import Database
from .store.audit import AuditStore
from .store.sessions import SessionRecord
from .store.users import UserRecord

if TYPE_CHECKING:  # both hash passwords: imported by the wiring only when it builds them
    from .accounts.credentials import Credentials
    from .accounts.registration import Registration

__all__ = ["AuthService", "ClientInfo", "TokenPair"]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is on the other end of a request (satisfies ``audit.Client``)."""

    address: str
    user_agent: str | None


class AuthService:
    def __init__(
        self,
        *,
        settings: Settings,
        verifier: Verifier,
        keyring: Keyring,
        registration: Registration,
        credentials: Credentials,
        admin: UserAdmin,
        sessions: SessionService,
        audit: AuditStore,
        db: Database,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.keyring = keyring
        self._registration = registration
        self._credentials = credentials
        self._admin = admin
        self._sessions = sessions
        self._audit = audit
        self._db = db

    @property
    def issuer_url(self) -> str:
        return self.verifier.policy.issuer

    async def ping(self) -> bool:
        """Whether the store answers (``/healthz``)."""
        return await self._db.ping()

    # -- accounts --------------------------------------------------------------------

    async def register(
        self, username: str, password: str, *, email: str | None = None,
        roles: Sequence[str] | None = None, client: ClientInfo | None = None,
    ) -> UserRecord:
        return await self._registration.register(
            username, password, email=email, roles=roles, client=client
        )

    async def login(self, username: str, password: str, client: ClientInfo) -> TokenPair:
        return await self._credentials.login(username, password, client)

    async def change_password(
        self, claims: Claims, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        await self._credentials.change_password(claims, current, new, client)

    # -- sessions --------------------------------------------------------------------

    async def refresh(self, presented: str, client: ClientInfo | None = None) -> TokenPair:
        return await self._sessions.refresh(presented, client)

    async def logout(
        self, claims: Claims | None, refresh_token: str | None,
        client: ClientInfo | None = None,
    ) -> None:
        await self._sessions.logout(claims, refresh_token, client)

    async def logout_all(self, claims: Claims, client: ClientInfo | None = None) -> None:
        await self._sessions.logout_all(claims, client)

    async def list_sessions(self, claims: Claims) -> list[SessionRecord]:
        return await self._sessions.list_sessions(claims)

    async def end_session(
        self, claims: Claims, session_id: str, client: ClientInfo | None = None
    ) -> None:
        await self._sessions.end_session(claims, session_id, client)

    # -- administration --------------------------------------------------------------

    async def list_users(self, *, limit: int, offset: int) -> list[UserRecord]:
        return await self._admin.list_users(limit=limit, offset=offset)

    async def find_user(self, username: str) -> UserRecord | None:
        return await self._admin.find_user(username)

    async def set_roles(
        self, user_id: str, roles: Sequence[str], *, actor_id: str | None = None,
        client: ClientInfo | None = None,
    ) -> UserRecord:
        return await self._admin.set_roles(user_id, roles, actor_id=actor_id, client=client)

    async def delete_user(
        self, user_id: str, *, actor_id: str | None = None, client: ClientInfo | None = None
    ) -> None:
        await self._admin.delete_user(user_id, actor_id=actor_id, client=client)

    async def audit_page(
        self, *, limit: int, before: int | None = None, user_id: str | None = None,
        event: AuditEventName | None = None, since: datetime | None = None,
    ) -> list[AuditEvent]:
        """Security events, newest first, with ids below ``before``."""
        return await self._audit.page(
            limit=limit, before=before, user_id=user_id, event=event, since=since
        )
