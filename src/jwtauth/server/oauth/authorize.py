"""The authorization endpoint (RFC 6749 4.1.1, OpenID Connect Core 3.1.2, RFC 9700).

``parse`` validates a request in the order RFC 6749 4.1.2.1 demands: until the client
and its redirect URI are known good, every error is an ``ErrorPage`` (never a redirect:
an open redirector otherwise); after that, errors go back to the client as a
``Redirect`` with ``error``, ``state`` and ``iss`` (RFC 9207). ``decide`` then says what
the browser sees next from who is signed in: the sign-in form, the consent page, or
the redirect with a code. ``consent`` handles the consent form's answer.

Only ``response_type=code`` with PKCE S256, the query response mode, and no request
objects: the OAuth 2.1 subset, so every other combination is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import codes as code_rules
from . import pkce
from . import scopes as scope_rules
from .client_auth import ClientDirectory
from .clients import ClientMetadata
from .config import OAuthConfig
from .consent import consent_token, consent_token_matches, missing_consent
from .errors import (
    AccessDeniedError,
    ConsentRequiredError,
    InvalidRequestError,
    InvalidTargetError,
    LoginRequiredError,
    OAuthError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnregisteredRedirectUriError,
    UnsupportedResponseTypeError,
)
from .jose import read_signed
from .ports import CodeRepository, ConsentRepository, Keys, SignIn
from .uris import match_redirect_uri

PROMPTS = frozenset({"none", "login", "consent"})
MAX_VALUE = 4096
MAX_HINT = 16384
MAX_NONCE = 512  # it is stored with the code, and echoed in ID tokens


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: ClientMetadata
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    hinted_sub: str | None = None  # the subject of a valid id_token_hint
    resource: str | None = None
    canonical: str = ""  # the request as a query string, for the forms to send back


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """Show an HTML error page (status 400): the redirect URI is not known good."""

    error: OAuthError


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to the client (303): a code, or an error."""

    url: str


@dataclass(frozen=True, slots=True)
class ShowSignIn:
    request: AuthorizationRequest
    login_hint: str | None


@dataclass(frozen=True, slots=True)
class ShowConsent:
    request: AuthorizationRequest
    scopes: tuple[str, ...]  # what the page lists
    consent_token: str  # the form's hidden field (CSRF)


Decision = ErrorPage | Redirect | ShowSignIn | ShowConsent


def add_query(uri: str, params: dict[str, str | None]) -> str:
    """``uri`` with ``params`` appended, its own query kept (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


class AuthorizationEndpoint:
    def __init__(self, config: OAuthConfig, clients: ClientDirectory, codes: CodeRepository,
                 consents: ConsentRepository, keys: Keys, now: Callable[[], datetime]) -> None:
        self.config = config
        self.clients = clients
        self.codes = codes
        self.consents = consents
        self.keys = keys
        self.now = now

    def error_redirect(self, redirect_uri: str, error: OAuthError, state: str | None) -> Redirect:
        return Redirect(add_query(redirect_uri, {
            "error": error.code, "error_description": error.description, "state": state,
            "iss": self.config.issuer,
        }))

    async def parse(
        self, pairs: Sequence[tuple[str, str]]
    ) -> AuthorizationRequest | ErrorPage | Redirect:
        params: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in pairs:
            if name in params:
                repeated.add(name)  # RFC 6749 3.1: no parameter more than once
            params.setdefault(name, value)
        client_id = params.get("client_id")
        if not client_id or "client_id" in repeated or len(client_id) > 64:
            return ErrorPage(InvalidRequestError("client_id is missing or repeated."))
        stored = await self.clients.get(client_id)
        if stored is None or not stored.metadata.allows_grant("authorization_code"):
            return ErrorPage(InvalidRequestError("Unknown client, or one without this flow."))
        client = stored.metadata
        presented = params.get("redirect_uri")
        # OpenID Connect Core 3.1.2.1: redirect_uri is required, and must match exactly.
        redirect_uri = None if presented is None or "redirect_uri" in repeated else (
            match_redirect_uri(presented, client.redirect_uris,
                               application_type=client.application_type)
        )
        if redirect_uri is None:
            return ErrorPage(UnregisteredRedirectUriError(field="redirect_uri"))
        state = params.get("state") if "state" not in repeated else None
        if state is not None and len(state) > MAX_VALUE:
            state = None
        try:
            request = self._validate(client, redirect_uri, params, repeated, pairs)
        except OAuthError as error:
            return self.error_redirect(redirect_uri, error, state)
        return request

    def _validate(
        self, client: ClientMetadata, redirect_uri: str, params: dict[str, str],
        repeated: set[str], pairs: Sequence[tuple[str, str]],
    ) -> AuthorizationRequest:
        if repeated:
            raise InvalidRequestError(f"{sorted(repeated)[0]} is repeated.")
        for name, value in params.items():
            if len(value) > (MAX_HINT if name == "id_token_hint" else MAX_VALUE):
                raise InvalidRequestError(f"{name} is too long.")
        if "request" in params:
            raise RequestNotSupportedError()
        if "request_uri" in params:
            raise RequestUriNotSupportedError()
        if params.get("response_type") != "code":
            raise UnsupportedResponseTypeError()
        if params.get("response_mode", "query") != "query":
            raise InvalidRequestError("Only response_mode=query is supported.")
        if "scope" not in params:
            raise InvalidRequestError("scope is required.")
        scope = scope_rules.parse_scope(params["scope"])
        scope_rules.check_allowed(scope, client.allowed_scopes())
        challenge = pkce.validate_challenge(
            params.get("code_challenge"), params.get("code_challenge_method")
        )
        prompt = frozenset(params.get("prompt", "").split())
        if prompt - PROMPTS or ("none" in prompt and len(prompt) > 1):
            raise InvalidRequestError("prompt holds an unsupported value or combination.")
        max_age = None
        if "max_age" in params:
            raw = params["max_age"]
            if not raw.isdigit() or len(raw) > 9:
                raise InvalidRequestError("max_age is a number of seconds.")
            max_age = int(raw)
        nonce = params.get("nonce")
        if nonce is not None and len(nonce) > MAX_NONCE:
            raise InvalidRequestError("nonce is too long.")
        resource = params.get("resource")
        if resource is not None and resource not in client.resources:
            raise InvalidTargetError()
        hinted = self._hinted_sub(params.get("id_token_hint"), client.client_id)
        return AuthorizationRequest(
            client=client, redirect_uri=redirect_uri, scope=scope, code_challenge=challenge,
            state=params.get("state"), nonce=nonce, prompt=prompt,
            max_age=max_age, login_hint=params.get("login_hint"), hinted_sub=hinted,
            resource=resource, canonical=urlencode(sorted(pairs)),
        )

    def _hinted_sub(self, hint: str | None, client_id: str) -> str | None:
        """The subject of an ID token this server issued to this client (expired is
        fine: OIDC Core 3.1.2.1 allows it as a hint)."""
        if hint is None:
            return None
        from ...errors import InvalidToken

        try:
            claims = read_signed(hint, self.keys.verification_key)
        except InvalidToken as exc:
            raise InvalidRequestError("id_token_hint is not an ID token of this server.") from exc
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        sub = claims.get("sub")
        if claims.get("iss") != self.config.issuer or client_id not in audiences or not (
            isinstance(sub, str) and sub
        ):
            raise InvalidRequestError("id_token_hint was not issued to this client.")
        return sub

    async def decide(self, request: AuthorizationRequest, signin: SignIn | None, *,
                     fresh_signin: bool = False) -> Decision:
        """``fresh_signin``: the user signed in with this very request (the sign-in form's
        POST), which satisfies ``prompt=login`` and ``max_age``."""
        now = self.now()
        if signin is None or (not fresh_signin and self._wants_login(request, signin, now)):
            if "none" in request.prompt:
                return self.error_redirect(request.redirect_uri, LoginRequiredError(),
                                           request.state)
            return ShowSignIn(request, request.login_hint)
        granted = await self.consents.granted(signin.user_id, request.client.client_id)
        missing = missing_consent(request.client, request.scope, granted,
                                  prompt_consent="consent" in request.prompt)
        if missing:
            if "none" in request.prompt:
                return self.error_redirect(request.redirect_uri, ConsentRequiredError(),
                                           request.state)
            return ShowConsent(request, missing, self._token(request, signin))
        return await self._issue(request, signin, now)

    @staticmethod
    def _wants_login(request: AuthorizationRequest, signin: SignIn, now: datetime) -> bool:
        if "login" in request.prompt:
            return True
        if request.max_age is not None:
            age = (now - signin.auth_time).total_seconds()
            if request.max_age == 0 or age > request.max_age:
                return True
        # OIDC Core 3.1.2.1: a hint naming someone else is not this browser's user.
        return request.hinted_sub is not None and request.hinted_sub != signin.user_id

    def _token(self, request: AuthorizationRequest, signin: SignIn) -> str:
        return consent_token(self.config.csrf_secret, signin_sid=signin.session_id,
                             auth_time=int(signin.auth_time.timestamp()),
                             request=request.canonical)

    async def consent(self, request: AuthorizationRequest, signin: SignIn | None, *,
                      decision: str | None, token: str | None) -> Decision:
        """The consent form's POST: ``decision`` is ``allow`` or ``deny``."""
        if signin is None or not consent_token_matches(
            self.config.csrf_secret, token, signin_sid=signin.session_id,
            auth_time=int(signin.auth_time.timestamp()), request=request.canonical,
        ):
            # Not redirected: nothing says this browser's user made the request.
            return ErrorPage(InvalidRequestError("The consent form is stale or was not ours."))
        if decision == "deny":
            return self.error_redirect(request.redirect_uri, AccessDeniedError(), request.state)
        if decision != "allow":
            return ErrorPage(InvalidRequestError("decision is allow or deny."))
        await self.consents.grant(signin.user_id, request.client.client_id,
                                  frozenset(request.scope), now=self.now())
        return await self._issue(request, signin, self.now())

    async def _issue(self, request: AuthorizationRequest, signin: SignIn,
                     now: datetime) -> Redirect:
        code = await code_rules.issue_code(
            self.codes, client_id=request.client.client_id, signin=signin,
            redirect_uri=request.redirect_uri, scope=request.scope,
            code_challenge=request.code_challenge, nonce=request.nonce,
            resource=request.resource, now=now, ttl=self.config.code_ttl,
        )
        return Redirect(add_query(request.redirect_uri, {
            "code": code, "state": request.state, "iss": self.config.issuer,
        }))
