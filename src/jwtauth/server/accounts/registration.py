"""Creating accounts: from ``POST /auth/register`` (limited per client address) and from
the operator's ``jwtauth user create`` (not limited, and it may give roles)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..passwords import PasswordHasher, validate_new_password
from ..ratelimit import EventLimiter
from ..store.users import UserRecord, UserStore
from .rules import validate_email, validate_roles, validate_username

DEFAULT_ROLES = ("user",)


class Registration:
    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        auditor: Auditor,
        *,
        limiter: EventLimiter | None,
        now: Callable[[], datetime],
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._audit = auditor
        self._limiter = limiter
        self._now = now

    async def register(
        self, username: str, password: str, *, email: str | None = None,
        roles: Sequence[str] | None = None, client: Client | None = None,
    ) -> UserRecord:
        """``client`` None: the operator's command line, which is not limited."""
        validate_username(username)
        checked_roles = validate_roles(roles if roles is not None else DEFAULT_ROLES)
        if email is not None:
            validate_email(email)
        if client is not None and self._limiter is not None:
            await self._limiter.hit(client.address)
        validate_new_password(password, username=username)
        password_hash = await self._hasher.hash(password)
        user = await self._users.create(
            username=username, password_hash=password_hash, roles=checked_roles, email=email,
            now=self._now(),
        )
        await self._audit.record(
            Audit.USER_REGISTERED, user_id=user.id, username=user.username, client=client
        )
        return user
