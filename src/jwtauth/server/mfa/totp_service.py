"""TOTP enrolment, use and removal for one account, with its recovery codes.

Phase 2 calls, from the routes of API.md:

- ``POST /auth/mfa/totp``: ``begin(user_id, account=username)`` -> ``Enrolment``
  (``secret``, ``otpauth_uri``; ``qr_svg`` for the page). ``Conflict`` when on.
- ``POST /auth/mfa/totp/confirm``: ``confirm(user_id, code)`` -> the ten recovery
  codes (shown once). ``InvalidInput`` (422) for a wrong code.
- ``DELETE /auth/mfa/totp``: ``disable(user_id, code)`` (a TOTP or recovery code);
  ``Forbidden`` (403) for a wrong one. The route also asks for a recent second factor
  (``acr`` aal2 and ``auth_time``, see ``assurance``).
- the login branch: ``is_on(user_id)``; the second step itself is
  ``challenge.MfaChallenges.complete``, which uses ``use_code`` / ``use_recovery_code``
  inside its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import Conflict, Forbidden, InvalidInput
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..sealing import Sealer
from ..store import Database
from ..store import totp as q
from ..store.audit import insert_event
from . import recovery, totp


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str

    def __repr__(self) -> str:  # the secret never reaches a log through repr
        return "Enrolment(<secret>)"


class CodeCheck(StrEnum):
    """The outcome of one code against one account (``use_code``)."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    REPLAYED = "replayed"  # right code, step already used: RFC 6238 section 5.2


class TotpService:
    def __init__(
        self, db: Database, sealer: Sealer, auditor: Auditor, *,
        now: Callable[[], datetime], issuer: str,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._audit = auditor
        self._now = now
        self._issuer = issuer

    async def begin(self, user_id: str, *, account: str, client: Client | None = None
                    ) -> Enrolment:
        secret = totp.new_secret()
        try:
            async with self._db.begin() as conn:
                await q.put_pending(conn, user_id, self._sealer.seal(user_id, secret),
                                    self._now())
        except sa.exc.IntegrityError as exc:
            raise Conflict("An enrolment is already under way; try again.") from exc
        await self._audit.record(Audit.TOTP_ENROLMENT_STARTED, user_id=user_id,
                                 username=account, client=client)
        uri = totp.otpauth_uri(secret, account=account, issuer=self._issuer)
        return Enrolment(secret, uri, totp.qr_svg(uri))

    async def confirm(self, user_id: str, code: str, *, client: Client | None = None
                      ) -> list[str]:
        """Turn TOTP on with a first correct code (which counts as used); the new
        recovery codes, stored only as hashes."""
        now = self._now()
        codes = recovery.new_codes()
        async with self._db.begin() as conn:
            row = await q.get(conn, user_id)
            step = None
            if row is not None and not row.confirmed:
                step = totp.matching_step(self._secret(row), code, now)
            if step is None or not await q.confirm(conn, user_id, step, now):
                raise InvalidInput("That code is not right; try the current one.",
                                   field="code")
            await q.replace_recovery_codes(
                conn, user_id, [h for c in codes if (h := recovery.hash_code(user_id, c))],
                now,
            )
            event = self._audit.event(Audit.TOTP_ENABLED, user_id=user_id, client=client)
            await insert_event(conn, event)
        self._audit.emit(event)
        return codes

    def _secret(self, row: q.TotpRow) -> str:
        return self._sealer.open(row.user_id, row.secret_sealed)

    async def is_on(self, user_id: str) -> bool:
        async with self._db.connect() as conn:
            row = await q.get(conn, user_id)
        return row is not None and row.confirmed

    async def use_code(self, conn: AsyncConnection, user_id: str, code: str) -> CodeCheck:
        """Inside the caller's transaction."""
        row = await q.get(conn, user_id)
        if row is None or not row.confirmed:
            return CodeCheck.WRONG
        step = totp.matching_step(self._secret(row), code, self._now())
        if step is None:
            return CodeCheck.WRONG
        if not await q.accept_step(conn, user_id, step):
            return CodeCheck.REPLAYED
        return CodeCheck.ACCEPTED

    async def use_recovery_code(self, conn: AsyncConnection, user_id: str, code: str) -> bool:
        code_hash = recovery.hash_code(user_id, code)
        if code_hash is None:
            return False
        return await q.use_recovery_code(conn, user_id, code_hash, self._now())

    async def recovery_codes_left(self, user_id: str) -> int:
        async with self._db.connect() as conn:
            return await q.recovery_codes_left(conn, user_id)

    async def disable(
        self, user_id: str, *, code: str | None = None, recovery_code: str | None = None,
        client: Client | None = None,
    ) -> None:
        async with self._db.begin() as conn:
            ok = False
            if code is not None:
                ok = await self.use_code(conn, user_id, code) == CodeCheck.ACCEPTED
            elif recovery_code is not None:
                ok = await self.use_recovery_code(conn, user_id, recovery_code)
            if not ok:
                raise Forbidden("That code is not right.")
            await q.delete(conn, user_id)
            event = self._audit.event(Audit.TOTP_DISABLED, user_id=user_id, client=client)
            await insert_event(conn, event)
        self._audit.emit(event)
