"""One-time tokens mailed to the account's address: email verification (24 h) and
password reset (30 min), API.md "Accounts people expect".

A token is 256 random bits (``secrets.token_urlsafe(32)``); only its SHA-256 is stored
(a plain hash suffices for 256 random bits, as for refresh tokens). It leaves the
server once, inside the mail, which is queued in the same transaction that stores the
token (``mail.outbox``). Redemption is single use under concurrency (see
``store.onetime``) and checks the purpose, so a verification token never resets a
password.

Limits: each account gets at most ``reset_mails_per_hour`` reset mails and
``verify_mails_per_hour`` verification mails an hour. A reset request over the limit
is dropped silently (``password_reset_throttled`` audit; the HTTP answer is 202 anyway,
API.md); a verification request over it raises ``RateLimited`` (429). A reset goes only
to a verified address of an enabled account.

Phase 2 calls:

- ``request_verification(user_id, origin=..., client=...)`` from
  ``POST /auth/email/verify/request`` (Conflict: no email; RateLimited);
- ``request_reset(user_id, origin=...)`` for every id of ``accounts_for_forgot(...)``,
  after the 202 is sent (API.md: the answer does not depend on the account);
- ``verify_email(token)`` from ``POST /auth/email/verify`` (InvalidGrant);
- ``redeem_reset(conn, token, now)`` inside the transaction of
  ``POST /auth/password/reset`` that also stores the new hash and revokes every session
  (the revocation unit of work), then ``reset_event`` for its audit row.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import Conflict, InvalidGrant, NotFound, RateLimited
from .audit import AuditEvent, AuditEventName, Auditor, Client
from .mail.address import fold_email, is_plausible_email
from .mail.message import MailKind
from .mail.outbox import Outbox
from .store import Database
from .store import onetime as q
from .store.audit import insert_event

TOKEN_BYTES = 32
_MAX_PRESENTED = 128  # longer input is not one of ours: refused before hashing


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password


_MAIL = {Purpose.VERIFY_EMAIL: MailKind.VERIFY_EMAIL,
         Purpose.PASSWORD_RESET: MailKind.PASSWORD_RESET}
_HOUR = timedelta(hours=1)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _OverLimit(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


class OneTimeTokens:
    def __init__(
        self, db: Database, outbox: Outbox, auditor: Auditor, *,
        now: Callable[[], datetime], verify_ttl: int = 86400, reset_ttl: int = 1800,
        verify_per_hour: int = 5, reset_per_hour: int = 3,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._audit = auditor
        self._now = now
        self._ttl = {Purpose.VERIFY_EMAIL: verify_ttl, Purpose.PASSWORD_RESET: reset_ttl}
        self._per_hour = {Purpose.VERIFY_EMAIL: verify_per_hour,
                          Purpose.PASSWORD_RESET: reset_per_hour}

    async def _issue(
        self, purpose: Purpose, user_id: str, *, origin: str, client: Client | None,
        event: AuditEventName, require_verified: bool,
    ) -> AuditEvent | None:
        """Store a token and queue its mail in one transaction. None when the account
        cannot get one (no such user, no address, unverified for a reset, disabled)."""
        now = self._now()
        token = new_token()
        async with self._db.begin() as conn:
            account = await q.lock_user(conn, user_id)
            if account is None or account.disabled or not account.email:
                return None
            if require_verified and not account.email_verified:
                return None
            await q.insert_token(
                conn, token_hash=hash_token(token), purpose=purpose.value, user_id=user_id,
                email_folded=account.email_folded, now=now, ttl=self._ttl[purpose],
            )
            # Counted after the insert, inside its transaction (store.onetime).
            recent = await q.issued_since(
                conn, user_id=user_id, purpose=purpose.value, since=now - _HOUR
            )
            if len(recent) > self._per_hour[purpose]:
                wait = (recent[0] + _HOUR - now).total_seconds()
                raise _OverLimit(max(1, math.ceil(wait)))
            mail_id = await self._outbox.enqueue(
                conn, kind=_MAIL[purpose], user_id=user_id, recipient=account.email,
                username=account.username, token=token, origin=origin,
                valid_for=self._ttl[purpose], now=now,
            )
            audit = self._audit.event(
                event, user_id=user_id, username=account.username, client=client,
                detail={"mail_id": mail_id},
            )
            await insert_event(conn, audit)
        self._audit.emit(audit)
        return audit

    async def request_verification(
        self, user_id: str, *, origin: str, client: Client | None = None
    ) -> None:
        """Raises ``Conflict`` (no email on file), ``NotFound``, ``RateLimited``."""
        try:
            issued = await self._issue(
                Purpose.VERIFY_EMAIL, user_id, origin=origin, client=client,
                event=AuditEventName.EMAIL_VERIFY_REQUESTED, require_verified=False,
            )
        except _OverLimit as over:
            raise RateLimited(over.retry_after) from None
        if issued is None:
            async with self._db.connect() as conn:
                account = await q.lock_user(conn, user_id)
            if account is None or account.disabled:
                raise NotFound("No such user.")
            raise Conflict("There is no email address on file for this account.")

    async def request_reset(
        self, user_id: str, *, origin: str, client: Client | None = None
    ) -> bool:
        """Queue a reset mail if the account may get one now; never raises for the
        account's state (the caller has answered 202 already). True if queued."""
        try:
            issued = await self._issue(
                Purpose.PASSWORD_RESET, user_id, origin=origin, client=client,
                event=AuditEventName.PASSWORD_RESET_REQUESTED, require_verified=True,
            )
        except _OverLimit:
            await self._audit.record(
                AuditEventName.PASSWORD_RESET_THROTTLED, user_id=user_id, client=client
            )
            return False
        return issued is not None

    async def accounts_for_forgot(
        self, *, email: str | None = None, username: str | None = None
    ) -> list[str]:
        """The ids a ``forgot`` body names (an email that is not plausible names none)."""
        folded = None
        if email is not None:
            email = email.strip()
            if not is_plausible_email(email):
                return []
            folded = fold_email(email)
        async with self._db.connect() as conn:
            return await q.users_for_forgot(conn, email=folded, username=username)

    async def verify_email(self, token: str, *, client: Client | None = None) -> str:
        """Mark the address verified; the user id. Raises ``InvalidGrant`` (unknown,
        used, expired, or the account's address changed since the mail)."""
        if not token or len(token) > _MAX_PRESENTED:
            raise InvalidGrant("malformed")
        now = self._now()
        async with self._db.begin() as conn:
            found = await q.redeem(
                conn, token_hash=hash_token(token), purpose=Purpose.VERIFY_EMAIL.value, now=now
            )
            if found is None or not await q.mark_email_verified(
                conn, user_id=found.user_id, email_folded=found.email_folded, now=now
            ):
                raise InvalidGrant("unknown, used or expired verification token")
            audit = self._audit.event(
                AuditEventName.EMAIL_VERIFIED, user_id=found.user_id, client=client
            )
            await insert_event(conn, audit)
        self._audit.emit(audit)
        return found.user_id

    async def redeem_reset(self, conn: AsyncConnection, token: str, now: datetime) -> str:
        """Inside the caller's transaction: spend the reset token (and every other
        unused reset token of the account); the user id. Raises ``InvalidGrant``; the
        caller's transaction then rolls back whatever it did before."""
        if not token or len(token) > _MAX_PRESENTED:
            raise InvalidGrant("malformed")
        found = await q.redeem(
            conn, token_hash=hash_token(token), purpose=Purpose.PASSWORD_RESET.value, now=now
        )
        if found is None:
            raise InvalidGrant("unknown, used or expired reset token")
        await q.spend_all(
            conn, user_id=found.user_id, purpose=Purpose.PASSWORD_RESET.value, now=now
        )
        return found.user_id

    async def prune(self, before: datetime) -> int:
        """Delete tokens that expired before ``before`` (a maintenance job)."""
        async with self._db.begin() as conn:
            return await q.prune(conn, before)
