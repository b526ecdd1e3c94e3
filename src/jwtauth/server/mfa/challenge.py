"""The ``mfa_token``: what a correct password earns when TOTP is on (API.md).

Opaque (256 random bits), stored only as SHA-256, single use, 5 minutes, bound to the
user and to the ``amr`` of the password step. ``complete`` checks the second factor
and consumes the token in one transaction: the factor's use (TOTP step or recovery
code) and the token's consumption commit together or not at all, so of two requests
with one token exactly one succeeds and the loser's factor is not spent. A wrong code
does not consume the token; it counts an attempt (``mfa_max_attempts`` kill it, a
bound beside the login limits) and the caller counts a login failure of the account
(``LoginLimiter.failed``), as API.md asks.

Phase 2's login branch: after the password, ``if await totp.is_on(user.id)``: answer
``{"mfa_required": true, "mfa_token": await challenges.issue(user.id, ["pwd"]),
"methods": ["totp", "recovery_code"]}`` (audit ``mfa_required``); at
``POST /auth/login/mfa``: ``limiter.check`` first, then ``complete(...)`` -> ``MfaResult``
with the ``amr``/``acr`` to put in the tokens; on ``InvalidCredentials`` call
``limiter.failed(address, username)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ...errors import InvalidCredentials
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..onetime import hash_token, new_token
from ..store import Database
from ..store import mfa_challenges as q
from ..store.audit import insert_event
from .assurance import Acr, Factor, acr_for, amr_for, factors_from_amr
from .totp_service import CodeCheck, TotpService

_MAX_PRESENTED = 128


@dataclass(frozen=True, slots=True)
class MfaResult:
    user_id: str
    amr: list[str]
    acr: Acr


class _Dead(Exception):
    """Unknown, used, expired or worn-out token."""


class _Lost(Exception):
    """Another request consumed the token first: roll this one's factor use back."""


class MfaChallenges:
    def __init__(
        self, db: Database, totp: TotpService, auditor: Auditor, *,
        now: Callable[[], datetime], ttl: int = 300, max_attempts: int = 10,
    ) -> None:
        self._db = db
        self._totp = totp
        self._audit = auditor
        self._now = now
        self._ttl = ttl
        self._max = max_attempts

    async def issue(self, user_id: str, amr: list[str], *, client: Client | None = None
                    ) -> str:
        token = new_token()
        async with self._db.begin() as conn:
            await q.insert(conn, token_hash=hash_token(token), user_id=user_id, amr=amr,
                           now=self._now(), ttl=self._ttl)
            event = self._audit.event(Audit.MFA_REQUIRED, user_id=user_id, client=client)
            await insert_event(conn, event)
        self._audit.emit(event)
        return token

    async def user_of(self, mfa_token: str) -> str | None:
        """The account a live token belongs to (for the login limits' key before the
        check); None for anything else."""
        if not mfa_token or len(mfa_token) > _MAX_PRESENTED:
            return None
        async with self._db.connect() as conn:
            found = await q.peek(conn, hash_token(mfa_token), self._now(),
                                 max_attempts=self._max)
        return found.user_id if found else None

    async def complete(
        self, mfa_token: str, *, code: str | None = None, recovery_code: str | None = None,
        client: Client | None = None,
    ) -> MfaResult:
        """Raises ``InvalidCredentials`` for an unknown, used, expired or exhausted
        token and for a wrong, replayed or missing code."""
        if not mfa_token or len(mfa_token) > _MAX_PRESENTED or (code is None) == (
            recovery_code is None
        ):
            raise InvalidCredentials()
        token_hash = hash_token(mfa_token)
        now = self._now()
        outcome = CodeCheck.WRONG
        user_id: str | None = None
        try:
            async with self._db.begin() as conn:
                found = await q.peek(conn, token_hash, now, max_attempts=self._max)
                if found is None:
                    raise _Dead()
                user_id = found.user_id
                if code is not None:
                    outcome = await self._totp.use_code(conn, user_id, code)
                    factor = Factor.TOTP
                elif await self._totp.use_recovery_code(conn, user_id, recovery_code or ""):
                    outcome, factor = CodeCheck.ACCEPTED, Factor.RECOVERY_CODE
                if outcome == CodeCheck.ACCEPTED:
                    if not await q.consume(conn, token_hash, now, max_attempts=self._max):
                        raise _Lost()
                    factors = [*factors_from_amr(found.amr), factor]
                    result = MfaResult(user_id, amr_for(factors), acr_for(factors))
                    name = (Audit.RECOVERY_CODE_USED if factor is Factor.RECOVERY_CODE
                            else Audit.MFA_SUCCEEDED)
                    event = self._audit.event(name, user_id=user_id, client=client,
                                              detail={"amr": result.amr})
                    await insert_event(conn, event)
        except _Lost:
            outcome = CodeCheck.WRONG
        except _Dead:
            await self._audit.record(Audit.MFA_FAILED, client=client,
                                     detail={"reason": "mfa_token"})
            raise InvalidCredentials() from None
        if outcome != CodeCheck.ACCEPTED:
            await self._failed(token_hash, user_id, outcome, client)
            raise InvalidCredentials()
        self._audit.emit(event)
        return result

    async def _failed(self, token_hash: str, user_id: str | None, outcome: CodeCheck,
                      client: Client | None) -> None:
        async with self._db.begin() as conn:
            await q.count_attempt(conn, token_hash)
        name = Audit.TOTP_REPLAY_REFUSED if outcome == CodeCheck.REPLAYED else Audit.MFA_FAILED
        await self._audit.record(name, user_id=user_id, client=client,
                                 detail={"reason": "code"})

    async def prune(self, before: datetime) -> int:
        async with self._db.begin() as conn:
            return await q.prune(conn, before)
