"""FastAPI dependencies that protect any app's routes with a ``Verifier`` (extra: fastapi).

    verifier = Verifier.from_jwks_url(".../.well-known/jwks.json", issuer=..., audience=...)

    @app.get("/me")
    async def me(claims: Claims = Depends(current_claims(verifier))): ...

    @app.get("/feed")       # anonymous callers too: None without a token, 401 with a bad one
    async def feed(claims: Claims | None = Depends(current_claims_optional(verifier))): ...

    @app.delete("/x", dependencies=[Depends(require_roles(verifier, "admin"))])
    @app.get("/reports", dependencies=[Depends(require_scopes(verifier, "reports:read"))])

A refusal is the contract's answer in any FastAPI app, with no set-up: 401 or 403, the body
``{"error", "message"}`` and RFC 6750's ``WWW-Authenticate``. The guards raise
``AuthHTTPException`` (a ``fastapi.HTTPException``), and register its handler with the
app's exception middleware the first time they refuse, unless the app has one of its own
for that class; ``install_error_handlers(app)`` does the same up front and also renders
every other ``AuthError``. Without the registration (an app not built on Starlette's
exception middleware), FastAPI's own handler still answers the right status and headers.

Each guard is a ``fastapi.security`` scheme, so the app's OpenAPI document declares the
Bearer scheme (``bearerAuth``) on every protected operation, and Swagger UI's Authorize
button sends the token.

Tokens are read from ``Authorization: Bearer`` only, never from a query string or form
(RFC 6750 section 5.3 and RFC 8725: URLs end up in logs and Referer headers).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the guards' ``__call__``
# signature at runtime, and older versions cannot resolve a string annotation on an instance.
import re
from typing import Any, NoReturn

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
    from fastapi.security.base import SecurityBase
    from starlette.responses import Response
except ModuleNotFoundError as exc:  # a base install: say which extra brings it
    raise ModuleNotFoundError(
        f"jwtauth.fastapi needs {exc.name!r}: pip install 'jwtauth-kit[fastapi]'", name=exc.name
    ) from exc

from .bearer import parse_authorization
from .claims import Claims
from .errors import AuthError, InsufficientRole, InsufficientScope, InvalidToken, MissingToken
from .http import error_parts
from .starlette import handle_auth_error
from .verifier import Verifier

SCHEME_NAME = "bearerAuth"
_SCHEME = HTTPBearerModel(
    bearerFormat="JWT", description="An access token (RFC 9068 at+jwt) from the jwtauth server."
)
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class AuthHTTPException(HTTPException):
    """A refusal by a guard: the ``AuthError`` with its status, body and headers."""

    def __init__(self, error: AuthError) -> None:
        status, body, headers = error_parts(error)
        super().__init__(status_code=status, detail=body["message"], headers=headers)
        self.error = error
        self.body = body


async def render_refusal(request: Request, exc: Exception) -> Response:
    """The handler for ``AuthHTTPException``: the contract's JSON body and headers."""
    assert isinstance(exc, AuthHTTPException)
    return await handle_auth_error(request, exc.error)


def _refuse(request: Request, error: AuthError) -> NoReturn:
    # Starlette's ExceptionMiddleware puts its live handler map in the scope, and looks
    # the handler up there after this raises: registering ours now makes the very first
    # refusal render as the contract says. setdefault keeps an app's own handler.
    handlers: Any = request.scope.get("starlette.exception_handlers")
    if isinstance(handlers, tuple) and handlers and isinstance(handlers[0], dict):
        handlers[0].setdefault(AuthHTTPException, render_refusal)
    raise AuthHTTPException(error) from None


class ClaimsGuard(SecurityBase):
    """A dependency that verifies the bearer token and checks roles or scopes."""

    def __init__(
        self, verifier: Verifier, *, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = ()
    ) -> None:
        self.model = _SCHEME
        self.scheme_name = SCHEME_NAME
        self.verifier = verifier
        self.roles = roles
        self.scopes = scopes

    async def __call__(self, request: Request) -> Claims:
        claims = await self._claims(request, optional=False)
        assert claims is not None
        return claims

    async def _claims(self, request: Request, *, optional: bool) -> Claims | None:
        try:
            token = parse_authorization(request.headers.getlist("authorization"))
        except MissingToken as exc:
            if optional:
                return None
            _refuse(request, exc)
        except InvalidToken as exc:
            _refuse(request, exc)
        try:
            # No I/O for a known kid; a JWKS-backed verifier may refetch its keys.
            claims = await self.verifier.verify(token)
        except InvalidToken as exc:
            _refuse(request, exc)
        if self.roles and not claims.has_role(*self.roles):
            _refuse(request, InsufficientRole())
        if self.scopes and not claims.has_scopes(*self.scopes):
            _refuse(request, InsufficientScope(self.scopes))
        request.state.claims = claims
        return claims


class OptionalClaimsGuard(ClaimsGuard):
    """``ClaimsGuard`` that lets a request without a bearer token through as None."""

    async def __call__(self, request: Request) -> Claims | None:  # type: ignore[override]
        return await self._claims(request, optional=True)


def bearer_token(request: Request) -> str:
    """The token of the one ``Authorization: Bearer`` header, or ``InvalidToken``."""
    return parse_authorization(request.headers.getlist("authorization"))


def current_claims(verifier: Verifier) -> ClaimsGuard:
    """A dependency giving the verified ``Claims`` of the request's bearer token."""
    return ClaimsGuard(verifier)


def current_claims_optional(verifier: Verifier) -> OptionalClaimsGuard:
    """Like ``current_claims``, but None when the request has no bearer token at all.

    A token that is present and bad is still refused (401): a caller who sent one meant
    to be recognised, and must learn that it was not.
    """
    return OptionalClaimsGuard(verifier)


def require_roles(verifier: Verifier, *roles: str) -> ClaimsGuard:
    """Like ``current_claims``, and the token must carry at least one of ``roles``
    (403 ``insufficient_role`` otherwise)."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    return ClaimsGuard(verifier, roles=roles)


def require_scopes(verifier: Verifier, *scopes: str) -> ClaimsGuard:
    """Like ``current_claims``, and the token's ``scope`` must hold every one of
    ``scopes`` (403 ``insufficient_scope``, naming them in ``WWW-Authenticate``)."""
    if not scopes:
        raise ValueError("require_scopes needs at least one scope")
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"{scope!r} is not an OAuth scope token (RFC 6749 section 3.3)")
    return ClaimsGuard(verifier, scopes=scopes)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every ``AuthError`` the app raises (not only the guards' refusals) with the
    contract's JSON body and headers. The guards need no call of this."""
    app.add_exception_handler(AuthError, handle_auth_error)
    app.add_exception_handler(AuthHTTPException, render_refusal)


__all__ = [
    "AuthHTTPException",
    "ClaimsGuard",
    "OptionalClaimsGuard",
    "bearer_token",
    "current_claims",
    "current_claims_optional",
    "install_error_handlers",
    "require_roles",
    "require_scopes",
]
