"""The token endpoint (RFC 6749 3.2): ``authorization_code`` with PKCE,
``refresh_token`` over the refresh families, and ``client_credentials``.

Order of checks: the request's form, then client authentication (``invalid_client``
before anything about the grant), then the grant type (unknown: ``unsupported_grant_type``;
not registered for this client: ``unauthorized_client``), then the grant itself.

Each OAuth code exchange starts a family of its own (``SessionFamilies.create``) under
the browser's sign-in session; a ``GrantLink`` row records which client holds it, with
what scope, so a refresh can neither cross clients nor widen the scope (RFC 6749 6,
RFC 9700 4.14) and a logout can find whom to tell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from . import scopes as scope_rules
from .client_auth import ClientDirectory, authenticate_client
from .clients import ClientMetadata
from .codes import Replay, redeem_code
from .config import OAuthConfig
from .errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from .forms import single_values
from .minting import Authentication, TokenMinter
from .ports import (
    CodeRecord,
    CodeRepository,
    GrantLink,
    GrantRepository,
    RotationOutcome,
    SessionFamilies,
    UserProfile,
    Users,
)

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def _audience(client: ClientMetadata, requested: str | None, granted: str | None) -> str | None:
    """RFC 8707 2.2: the resource of this access token, within what was authorized."""
    if requested is None:
        return granted
    if granted is not None and requested != granted:
        raise InvalidTargetError()
    if requested not in client.resources:
        raise InvalidTargetError()
    return requested


class TokenEndpoint:
    def __init__(
        self, config: OAuthConfig, clients: ClientDirectory, codes: CodeRepository,
        grants: GrantRepository, families: SessionFamilies, users: Users,
        minter: TokenMinter, now: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.clients = clients
        self.codes = codes
        self.grants = grants
        self.families = families
        self.users = users
        self.minter = minter
        self.now = now

    async def handle(self, pairs: Sequence[tuple[str, str]], *,
                     authorization: str | None) -> dict[str, Any]:
        """The JSON body of a successful token response (sent with ``NO_STORE``)."""
        form = single_values(pairs)
        stored = await authenticate_client(self.clients, authorization=authorization, form=form)
        client = stored.metadata
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequestError("grant_type is required.", field="grant_type")
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantTypeError()
        if not client.allows_grant(grant_type) or (
            grant_type == "client_credentials" and client.is_public
        ):
            raise UnauthorizedClientError()
        if grant_type == "authorization_code":
            return await self._authorization_code(client, form)
        if grant_type == "refresh_token":
            return await self._refresh_token(client, form)
        return self._client_credentials(client, form)

    async def _authorization_code(self, client: ClientMetadata,
                                  form: dict[str, str]) -> dict[str, Any]:
        now = self.now()
        redeemed = await redeem_code(
            self.codes, form.get("code"), client_id=client.client_id,
            redirect_uri=form.get("redirect_uri"), code_verifier=form.get("code_verifier"),
            now=now,
        )
        if isinstance(redeemed, Replay):
            if redeemed.family_id is not None:
                await self.families.revoke([redeemed.family_id], now=now)
            raise InvalidGrantError("The code was used before; what it gave is revoked.")
        audience = _audience(client, form.get("resource"), redeemed.resource)
        user = await self._user(redeemed.user_id)
        offline = scope_rules.OFFLINE_ACCESS in redeemed.scope
        refresh = client.allows_grant("refresh_token") and (offline or not client.is_public)
        family = await self.families.create(
            user_id=user.id, client_id=client.client_id, refresh=refresh, now=now
        )
        link = self._link(redeemed, family.session_id, client, offline, now)
        await self.grants.link(link)
        if await self.codes.bind_family(redeemed.code_hash, family.session_id):
            # A replay raced this exchange and lost: what this exchange made dies too.
            await self.families.revoke([family.session_id], now=now)
            raise InvalidGrantError("The code was used twice; what it gave is revoked.")
        return self._response(client, user, link, redeemed.scope, audience,
                              family.refresh_token, nonce=redeemed.nonce)

    @staticmethod
    def _link(code: CodeRecord, session_id: str, client: ClientMetadata, offline: bool,
              now: datetime) -> GrantLink:
        return GrantLink(
            session_id=session_id, client_id=client.client_id, user_id=code.user_id,
            scope=code.scope, resource=code.resource, parent_sid=code.signin_sid,
            offline=offline, nonce=code.nonce, auth_time=code.auth_time, amr=code.amr,
            acr=code.acr, created_at=now,
        )

    async def _user(self, user_id: str) -> UserProfile:
        user = await self.users.profile(user_id)
        if user is None:  # deleted or disabled since
            raise InvalidGrantError("The user can no longer sign in.")
        return user

    async def _refresh_token(self, client: ClientMetadata,
                             form: dict[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented or len(presented) > 256:
            raise InvalidRequestError("refresh_token is required.", field="refresh_token")
        session_id = await self.families.family_of(presented)
        link = await self.grants.get(session_id) if session_id else None
        # Checked before rotating: another client's token must not even be rotated.
        if link is None or link.client_id != client.client_id:
            raise InvalidGrantError()
        scope = link.scope
        if "scope" in form:
            narrowed = scope_rules.parse_scope(form["scope"])
            if not set(narrowed) <= set(link.scope):
                raise InvalidScopeError("A refresh cannot add scope (RFC 6749 6).")
            scope = narrowed
        audience = _audience(client, form.get("resource"), link.resource)
        rotation = await self.families.rotate(presented, now=self.now())
        if rotation.outcome not in (RotationOutcome.ROTATED, RotationOutcome.GRACE):
            raise InvalidGrantError()
        user = await self._user(link.user_id)
        return self._response(client, user, link, scope, audience, rotation.refresh_token,
                              nonce=link.nonce)

    def _response(self, client: ClientMetadata, user: UserProfile, link: GrantLink,
                  scope: tuple[str, ...], audience: str | None, refresh_token: str | None,
                  *, nonce: str | None) -> dict[str, Any]:
        authn = Authentication(link.auth_time, link.amr, link.acr)
        body: dict[str, Any] = {
            "access_token": self.minter.user_access_token(
                user=user, client_id=client.client_id, sid=link.session_id, scope=scope,
                audience=audience, authn=authn,
            ),
            "token_type": "Bearer",
            "expires_in": self.config.access_ttl,
            "scope": scope_rules.join(scope),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if scope_rules.OPENID in scope:
            body["id_token"] = self.minter.id_token(
                client=client, user=user, sid=link.session_id, scope=scope, nonce=nonce,
                authn=authn,
            )
        return body

    def _client_credentials(self, client: ClientMetadata,
                            form: dict[str, str]) -> dict[str, Any]:
        scope = scope_rules.parse_scope(form.get("scope"))
        if set(scope) & scope_rules.USER_SCOPES:
            raise InvalidScopeError("client_credentials has no user: no OpenID scopes.")
        scope_rules.check_allowed(scope, frozenset(client.scope))
        audience = _audience(client, form.get("resource"), None)
        body: dict[str, Any] = {
            "access_token": self.minter.client_access_token(
                client_id=client.client_id, scope=scope, audience=audience
            ),
            "token_type": "Bearer",
            "expires_in": self.config.access_ttl,
        }
        if scope:
            body["scope"] = scope_rules.join(scope)
        return body
