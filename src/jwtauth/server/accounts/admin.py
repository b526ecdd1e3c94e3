"""User administration: what ``/admin/users`` and ``jwtauth user ...`` do. No password
hashing here, so the command line builds no hasher for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ...errors import NotFound
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..sessions import DeletedUser, Revoker
from ..store.users import UserRecord, UserStore
from .rules import validate_roles


class UserAdmin:
    def __init__(
        self, users: UserStore, revoker: Revoker, auditor: Auditor, *,
        now: Callable[[], datetime],
    ) -> None:
        self._users = users
        self._revoker = revoker
        self._audit = auditor
        self._now = now

    async def list_users(self, *, limit: int, offset: int) -> list[UserRecord]:
        return await self._users.page(limit=limit, offset=offset)

    async def find_user(self, username: str) -> UserRecord | None:
        return await self._users.by_username(username)

    async def set_roles(
        self, user_id: str, roles: Sequence[str], *, actor_id: str | None = None,
        client: Client | None = None,
    ) -> UserRecord:
        """``actor_id``: the admin acting (None from the command line)."""
        new_roles = validate_roles(roles)
        before = await self._users.by_id(user_id)
        if before is None:
            raise NotFound("No such user.")
        event = self._audit.event(
            Audit.ROLES_CHANGED, user_id=user_id, username=before.username, actor_id=actor_id,
            client=client, detail={"old_roles": before.roles, "new_roles": new_roles},
        )
        user = await self._users.set_roles(user_id, new_roles, self._now(), audit=event)
        if user is None:
            raise NotFound("No such user.")
        self._audit.emit(event)
        return user

    async def delete_user(
        self, user_id: str, *, actor_id: str | None = None, client: Client | None = None
    ) -> None:
        """Delete the user; every session and token of theirs dies with it at once."""
        found = await self._users.by_id(user_id)
        if found is None:
            raise NotFound("No such user.")
        event = self._audit.event(
            Audit.USER_DELETED, user_id=user_id, username=found.username, actor_id=actor_id,
            client=client,
        )
        if await self._revoker.end(DeletedUser(user_id), event) is None:
            raise NotFound("No such user.")
