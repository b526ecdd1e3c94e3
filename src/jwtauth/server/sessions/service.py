"""Sessions as the user sees them: start one (after a login), refresh it, list them and
end them. Rotation is ``rotation.py``'s; every ending goes through ``revocation.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ...claims import Claims
from ...errors import InvalidGrant, NotFound
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..store.sessions import SessionRecord, SessionStore
from ..tokens import TokenIssuer
from .revocation import OneSession, Revoker, UserSessions
from .rotation import Invalid, Renewal, Reused, Rotator
from .tokens import hash_refresh_token, is_refresh_token_shaped, new_refresh_token


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    refresh_ttl: int
    absolute_ttl: int  # the cap of a family, however often it is refreshed


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        rotator: Rotator,
        revoker: Revoker,
        issuer: TokenIssuer,
        auditor: Auditor,
        policy: SessionPolicy,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._rotator = rotator
        self._revoker = revoker
        self._issuer = issuer
        self._audit = auditor
        self._policy = policy
        self._now = now

    async def start(
        self, *, user_id: str, username: str, roles: list[str], client: Client
    ) -> tuple[str, TokenPair]:
        """A new family for a user who just proved who they are: (session id, tokens)."""
        token = new_refresh_token()
        session_id = await self._store.create(
            user_id=user_id, token_hash=hash_refresh_token(token), now=self._now(),
            ttl=self._policy.refresh_ttl, absolute_ttl=self._policy.absolute_ttl,
            user_agent=client.user_agent, client_ip=client.address,
        )
        pair = self._pair(user_id, session_id, roles, username, token, self._policy.refresh_ttl)
        return session_id, pair

    def _pair(
        self, user_id: str, session_id: str, roles: list[str], username: str, token: str,
        refresh_in: int,
    ) -> TokenPair:
        access = self._issuer.issue(sub=user_id, sid=session_id, roles=roles, username=username)
        return TokenPair(access, self._issuer.ttl, token, refresh_in)

    async def refresh(self, presented: str, client: Client | None = None) -> TokenPair:
        now = self._now()
        # Written with the family's revocation, if that is what this turns out to be.
        reuse = self._audit.event(
            Audit.REFRESH_TOKEN_REUSED, client=client, detail={"family_revoked": True}
        )
        outcome = await self._rotator.rotate(
            presented, new_refresh_token(), now=now, reuse_audit=reuse
        )
        match outcome:
            case Renewal():
                refresh_in = max(1, int((outcome.expires_at - now).total_seconds()))
                return self._pair(
                    outcome.user_id, outcome.session_id, outcome.roles, outcome.username,
                    outcome.token, refresh_in,
                )
            case Reused():
                raise InvalidGrant("reused")
            case Invalid(reason):  # the reason is for the log; the answer is the same
                raise InvalidGrant(reason)

    async def logout(
        self, claims: Claims | None, refresh_token: str | None, client: Client | None = None
    ) -> None:
        """End the session of the access token and/or of the refresh token."""
        targets: list[tuple[str, str]] = []
        if claims is not None and claims.sid is not None:  # no sid: a client's token
            targets.append((claims.sid, claims.sub))
        if refresh_token and is_refresh_token_shaped(refresh_token):
            found = await self._store.session_of_token(hash_refresh_token(refresh_token))
            if found is not None and (claims is None or found[1] == claims.sub):
                targets.append(found)
        if not targets:
            raise InvalidGrant("nothing to log out")
        for session_id, user_id in dict.fromkeys(targets):
            username = claims.username if claims is not None and claims.sub == user_id else None
            event = self._audit.event(
                Audit.LOGOUT, user_id=user_id, session_id=session_id, client=client,
                username=username,
            )
            await self._revoker.end(OneSession(session_id, user_id), event)

    async def logout_all(self, claims: Claims, client: Client | None = None) -> None:
        event = self._audit.event(
            Audit.LOGOUT_ALL, user_id=claims.sub, username=claims.username,
            session_id=claims.sid, client=client,
        )
        await self._revoker.end(UserSessions(claims.sub), event)

    async def list_sessions(self, claims: Claims) -> list[SessionRecord]:
        return await self._store.live_for_user(claims.sub, self._now())

    async def end_session(
        self, claims: Claims, session_id: str, client: Client | None = None
    ) -> None:
        event = self._audit.event(
            Audit.SESSION_ENDED, user_id=claims.sub, username=claims.username,
            session_id=session_id, client=client, detail={"by_session": claims.sid},
        )
        if await self._revoker.end(OneSession(session_id, claims.sub), event) is None:
            raise NotFound("No such session.")
