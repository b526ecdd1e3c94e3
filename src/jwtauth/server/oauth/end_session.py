"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, section 2 and 3).

The core decides; the service ends the sessions (its one revocation unit of work, which
also enqueues the back-channel logout tokens) and the web layer redirects. A request
with a valid ``id_token_hint`` for the signed-in user ends that browser's sign-in
session (and with it the families that die with it) at once; one without a hint, or
naming someone else, asks the user first (section 2: otherwise any site could sign the
user out). ``post_logout_redirect_uri`` must be registered for the client exactly like
a redirect URI, or there is no redirect at all (an open redirector otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import InvalidToken
from .authorize import ErrorPage, add_query
from .client_auth import ClientDirectory
from .config import OAuthConfig
from .errors import InvalidRequestError
from .forms import single_values
from .jose import read_signed
from .ports import Keys, SignIn
from .uris import match_redirect_uri


@dataclass(frozen=True, slots=True)
class EndSession:
    """End ``session_ids`` (empty: nothing signed in here), then go to ``redirect``
    (None: show a "signed out" page). ``confirm``: ask the user first, by a form that
    posts the same parameters back with ``confirmed=True``."""

    session_ids: tuple[str, ...]
    redirect: str | None
    confirm: bool = False


class EndSessionEndpoint:
    def __init__(self, config: OAuthConfig, clients: ClientDirectory, keys: Keys) -> None:
        self.config = config
        self.clients = clients
        self.keys = keys

    async def decide(self, pairs: Sequence[tuple[str, str]], signin: SignIn | None, *,
                     confirmed: bool = False) -> EndSession | ErrorPage:
        try:
            params = single_values(pairs)
        except InvalidRequestError as exc:
            return ErrorPage(exc)
        hinted_sub: str | None = None
        client_id = params.get("client_id")
        if "id_token_hint" in params:
            try:
                claims = read_signed(params["id_token_hint"], self.keys.verification_key)
            except InvalidToken:
                return ErrorPage(InvalidRequestError("id_token_hint is not ours."))
            aud = claims.get("aud")
            if claims.get("iss") != self.config.issuer or not isinstance(aud, str):
                return ErrorPage(InvalidRequestError("id_token_hint is not ours."))
            if client_id is not None and client_id != aud:
                return ErrorPage(InvalidRequestError("client_id differs from the hint's."))
            client_id, hinted_sub = aud, claims.get("sub")
        redirect = None
        target = params.get("post_logout_redirect_uri")
        if target is not None:
            stored = await self.clients.get(client_id) if client_id else None
            matched = stored and match_redirect_uri(
                target, stored.metadata.post_logout_redirect_uris,
                application_type=stored.metadata.application_type,
            )
            if not matched:
                return ErrorPage(InvalidRequestError(
                    "post_logout_redirect_uri is not registered for this client."
                ))
            redirect = add_query(matched, {"state": params.get("state")})
        if signin is None:
            return EndSession((), redirect)
        trusted = hinted_sub is not None and hinted_sub == signin.user_id
        if not trusted and not confirmed:
            return EndSession((signin.session_id,), redirect, confirm=True)
        return EndSession((signin.session_id,), redirect)
