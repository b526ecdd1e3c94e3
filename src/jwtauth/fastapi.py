"""FastAPI dependencies that protect any app's routes with a ``Verifier``.

    verifier = Verifier.from_jwks_url(".../.well-known/jwks.json", issuer=..., audience=...)
    install_error_handlers(app)   # the same JSON errors and WWW-Authenticate as the server

    @app.get("/me")
    async def me(claims: Claims = Depends(current_claims(verifier))): ...

    @app.delete("/x", dependencies=[Depends(require_roles(verifier, "admin"))])

Tokens are read from ``Authorization: Bearer`` only, never from a query string or form
(RFC 6750 section 5.3 and RFC 8725: URLs end up in logs and Referer headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request

from .bearer import parse_authorization
from .claims import Claims
from .errors import AuthError, InsufficientRole
from .starlette import handle_auth_error
from .verifier import Verifier

ClaimsDependency = Callable[[Request], Awaitable[Claims]]


def bearer_token(request: Request) -> str:
    """The token of the one ``Authorization: Bearer`` header, or ``InvalidToken``."""
    return parse_authorization(request.headers.getlist("authorization"))


def current_claims(verifier: Verifier) -> ClaimsDependency:
    """A dependency giving the verified ``Claims`` of the request's bearer token."""

    async def dependency(request: Request) -> Claims:
        # ``verify`` does no I/O for a known kid; a JWKS-backed verifier may refetch keys.
        claims = await verifier.verify(bearer_token(request))
        request.state.claims = claims
        return claims

    return dependency


def require_roles(verifier: Verifier, *roles: str) -> ClaimsDependency:
    """Like ``current_claims``, and the token must carry at least one of ``roles``."""
    if not roles:
        raise ValueError("require_roles needs at least one role")

    async def dependency(request: Request) -> Claims:
        claims = await verifier.verify(bearer_token(request))
        if not claims.has_role(*roles):
            raise InsufficientRole()
        request.state.claims = claims
        return claims

    return dependency


def install_error_handlers(app: FastAPI) -> None:
    """Answer jwtauth errors with the server's JSON body and headers."""
    app.add_exception_handler(AuthError, handle_auth_error)


__all__ = ["bearer_token", "current_claims", "install_error_handlers", "require_roles"]
