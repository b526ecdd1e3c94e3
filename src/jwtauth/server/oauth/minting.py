"""The provider's tokens: access tokens (RFC 9068, as API.md's "Access token" plus
``client_id`` and ``scope``) and ID tokens (OpenID Connect Core 2 and 3.1.3.6).

Access tokens are signed with the server's current key, so every resource server that
verifies first-party tokens verifies these. A user's token carries the ``sid`` of the
family the client holds (revoking it kills the token); a client_credentials token has
``sub`` = the client id and neither ``sid`` nor ``roles`` (API.md). ID tokens are signed
with the algorithm the client registered (RS256 by default, OIDC Registration 2).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import scopes as scope_rules
from .clients import ClientMetadata
from .config import OAuthConfig
from .errors import ServerError
from .jose import sign_jwt
from .ports import Keys, UserProfile


@dataclass(frozen=True, slots=True)
class Authentication:
    """How and when the user signed in (carried from the code to every refresh)."""

    auth_time: datetime
    amr: tuple[str, ...]
    acr: str


class TokenMinter:
    def __init__(self, config: OAuthConfig, keys: Keys, clock: Callable[[], float]) -> None:
        self.config = config
        self.keys = keys
        self.clock = clock

    def _times(self, ttl: int) -> tuple[int, int]:
        now = int(self.clock())
        return now, now + ttl

    def user_access_token(
        self, *, user: UserProfile, client_id: str, sid: str, scope: tuple[str, ...],
        audience: str | None, authn: Authentication,
    ) -> str:
        now, exp = self._times(self.config.access_ttl)
        claims: dict[str, Any] = {
            "iss": self.config.issuer, "sub": user.id, "aud": audience or self.config.audience,
            "iat": now, "nbf": now, "exp": exp, "jti": uuid.uuid4().hex, "sid": sid,
            "roles": list(user.roles), "client_id": client_id,
            "scope": scope_rules.join(scope), "amr": list(authn.amr), "acr": authn.acr,
        }
        if "profile" in scope:
            claims["preferred_username"] = user.username
        return sign_jwt(self.keys.access_token_key(), claims, typ="at+jwt")

    def client_access_token(self, *, client_id: str, scope: tuple[str, ...],
                            audience: str | None) -> str:
        now, exp = self._times(self.config.access_ttl)
        claims = {
            "iss": self.config.issuer, "sub": client_id, "aud": audience or self.config.audience,
            "iat": now, "nbf": now, "exp": exp, "jti": uuid.uuid4().hex,
            "client_id": client_id, "scope": scope_rules.join(scope),
        }
        return sign_jwt(self.keys.access_token_key(), claims, typ="at+jwt")

    def id_token(
        self, *, client: ClientMetadata, user: UserProfile, sid: str, scope: tuple[str, ...],
        nonce: str | None, authn: Authentication,
    ) -> str:
        key = self.keys.id_token_key(client.id_token_signed_response_alg)
        if key is None:
            raise ServerError("No key for the client's ID token algorithm.")
        now, exp = self._times(self.config.id_token_ttl)
        claims: dict[str, Any] = {
            "iss": self.config.issuer, "sub": user.id, "aud": client.client_id,
            "exp": exp, "iat": now, "auth_time": int(authn.auth_time.timestamp()),
            "sid": sid, "amr": list(authn.amr), "acr": authn.acr,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(user_claims(user, scope))
        return sign_jwt(key, claims)


def user_claims(user: UserProfile, scope: tuple[str, ...]) -> dict[str, Any]:
    """The claims ``scope`` releases about ``user`` (ID token and userinfo alike)."""
    available: dict[str, Any] = {
        "preferred_username": user.username,
        "email": user.email,
        "email_verified": user.email_verified if user.email else False,
    }
    released = {}
    for name in scope_rules.claims_for(scope):
        value = available[name]
        if value is not None:
            released[name] = value
    return released
