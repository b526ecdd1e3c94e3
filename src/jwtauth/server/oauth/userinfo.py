"""The UserInfo endpoint (OpenID Connect Core 5.3), for GET and POST alike.

The token is checked from memory (the library's verifier), and the profile comes from
``Users.profile``, which must answer from memory too: a live token costs no database
round trip. The token must carry ``openid`` and be one of this server's own audience
(a token for another resource is not for this endpoint: RFC 8707, RFC 9068 4).
"""

from __future__ import annotations

from typing import Any

from ...errors import InvalidToken
from .config import OAuthConfig
from .errors import InsufficientScopeError
from .minting import user_claims
from .ports import AccessTokenVerifier, Users
from .scopes import OPENID, parse_scope


class UserInfo:
    def __init__(self, config: OAuthConfig, verifier: AccessTokenVerifier, users: Users) -> None:
        self.config = config
        self.verifier = verifier
        self.users = users

    async def claims(self, token: str) -> dict[str, Any]:
        """``InvalidToken`` (401) for a bad token, ``InsufficientScopeError`` (403)."""
        verified = self.verifier.verify_sync(token)
        raw = verified.raw
        aud = raw.get("aud")
        if aud != self.config.audience and not (
            isinstance(aud, list) and self.config.audience in aud
        ):
            raise InvalidToken("not for userinfo")
        if not verified.sid:  # client_credentials: no user behind it
            raise InsufficientScopeError("This token has no user.")
        scope = parse_scope(raw.get("scope") if isinstance(raw.get("scope"), str) else "")
        if OPENID not in scope:
            raise InsufficientScopeError("The token lacks the openid scope.")
        user = await self.users.profile(verified.sub)
        if user is None:
            raise InvalidToken("no such user")
        return {"sub": user.id, **user_claims(user, scope)}
