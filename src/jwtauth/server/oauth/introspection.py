"""Token introspection (RFC 7662) and revocation (RFC 7009).

An access token is answered from memory: the library's check (keys, revocations) and
nothing else, so introspecting a live token costs no database round trip. Only a token
that is not a JWT can be a refresh token, and only that one is looked up (its family).

Who may ask: a confidential client (RFC 7662 2.1 requires authentication; a public
client has none). Revocation follows RFC 7009 2.1: a client may revoke only tokens
issued to it; any other token, unknown or not, gets the same 200 and no effect, so the
endpoint tells nobody whether a token exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ...claims import Claims
from ...errors import InvalidToken
from .client_auth import ClientDirectory, authenticate_client
from .errors import InvalidRequestError, UnauthorizedClientError
from .forms import single_values
from .ports import AccessTokenRevoker, AccessTokenVerifier, GrantRepository, SessionFamilies

INACTIVE: dict[str, Any] = {"active": False}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _access_token_info(claims: Claims) -> dict[str, Any]:
    raw = claims.raw
    info: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "sid"):
        if name in raw:
            info[name] = raw[name]
    if claims.username is not None:
        info["username"] = claims.username
    return info


class TokenInspection:
    def __init__(self, clients: ClientDirectory, verifier: AccessTokenVerifier,
                 families: SessionFamilies, grants: GrantRepository,
                 revoker: AccessTokenRevoker, now: Callable[[], datetime]) -> None:
        self.clients = clients
        self.verifier = verifier
        self.families = families
        self.grants = grants
        self.revoker = revoker
        self.now = now

    async def _parse(self, pairs: Sequence[tuple[str, str]],
                     authorization: str | None) -> tuple[str, str, str | None]:
        form = single_values(pairs)
        stored = await authenticate_client(self.clients, authorization=authorization, form=form)
        if stored.metadata.is_public:
            raise UnauthorizedClientError("A public client cannot use this endpoint.")
        token = form.get("token")
        if not token:
            raise InvalidRequestError("token is required.", field="token")
        return stored.metadata.client_id, token, form.get("token_type_hint")

    async def introspect(self, pairs: Sequence[tuple[str, str]], *,
                         authorization: str | None) -> dict[str, Any]:
        _, token, _hint = await self._parse(pairs, authorization)
        # The hint only orders the search (RFC 7662 2.1); the token's shape decides here.
        if looks_like_jwt(token):
            try:
                return _access_token_info(self.verifier.verify_sync(token))
            except InvalidToken:
                return dict(INACTIVE)
        return await self._refresh_token_info(token)

    async def _refresh_token_info(self, token: str) -> dict[str, Any]:
        if len(token) > 256:
            return dict(INACTIVE)
        now = self.now()
        session_id = await self.families.family_of(token)
        link = await self.grants.get(session_id) if session_id else None
        if link is None or not await self.families.is_current(token, now=now):
            return dict(INACTIVE)
        return {
            "active": True, "token_type": "refresh_token", "client_id": link.client_id,
            "sub": link.user_id, "scope": " ".join(link.scope), "sid": link.session_id,
            "iat": int(link.created_at.timestamp()),
        }

    async def revoke(self, pairs: Sequence[tuple[str, str]], *,
                     authorization: str | None) -> None:
        """RFC 7009: a refresh token's family dies with its access tokens; an access
        token dies alone. Always 200 for a request that authenticated."""
        client_id, token, _hint = await self._parse(pairs, authorization)
        if looks_like_jwt(token):
            try:
                claims = self.verifier.verify_sync(token)
            except InvalidToken:
                return  # expired, revoked or not ours: nothing to do (RFC 7009 2.2)
            if claims.raw.get("client_id") == client_id:
                await self.revoker.revoke_access_token(claims)
            return
        if len(token) > 256:
            return
        session_id = await self.families.family_of(token)
        link = await self.grants.get(session_id) if session_id else None
        if link is not None and link.client_id == client_id:
            await self.families.revoke([link.session_id], now=self.now())
