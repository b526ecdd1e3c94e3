"""Protect a Starlette (or any ASGI) app with a ``Verifier`` (extra: starlette).

Two ways. ``JWTAuthBackend``, for Starlette's ``AuthenticationMiddleware``, gives every
request ``request.user`` and ``request.auth``, so ``@requires`` works::

    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=JWTAuthBackend(verifier),
                   on_error=on_auth_error),
    ])

    @requires("admin")            # the token's roles are the scopes @requires checks
    async def purge(request): ...  # request.user.identity == claims.sub

A request without a token passes as ``UnauthenticatedUser`` (``@requires`` then answers
Starlette's 403, or redirects); a bad token is refused by the middleware before any
route runs, through ``on_error``: ``on_auth_error`` answers with the contract's JSON body
(401 ``invalid_token``) and ``WWW-Authenticate``, where Starlette's default would answer
a plain-text 400.

``JWTAuthMiddleware`` protects whole path prefixes instead::

    app = Starlette(routes=..., middleware=[
        Middleware(JWTAuthMiddleware, verifier=verifier, exclude=["/health"]),
    ])

Requests to protected paths need ``Authorization: Bearer <token>``; the verified
``Claims`` are put in ``scope["state"]["claims"]`` (``request.state.claims``). A refusal is
answered with the server's own JSON error body and ``WWW-Authenticate`` header. It is a
plain ASGI middleware (not ``BaseHTTPMiddleware``), so streaming and background tasks of
the app behind it are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

try:
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        AuthenticationError,
        BaseUser,
    )
    from starlette.datastructures import Headers
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, Response
    from starlette.types import ASGIApp, Receive, Scope, Send
except ModuleNotFoundError as exc:  # a base install: say which extra brings it
    raise ModuleNotFoundError(
        f"jwtauth.starlette needs {exc.name!r}: pip install 'jwtauth-kit[starlette]'",
        name=exc.name,
    ) from exc

from .bearer import parse_authorization
from .claims import Claims
from .errors import AuthError, InvalidGrant, InvalidToken, MissingToken
from .http import error_parts
from .verifier import Verifier

log = logging.getLogger("jwtauth.http")

# RFC 6455 section 7.4.1: 1008 is "policy violation", the close code for a refused token.
WS_POLICY_VIOLATION = 1008


def _normalize(prefixes: Iterable[str]) -> tuple[str, ...]:
    return tuple("/" + p.strip("/") if p.strip("/") else "/" for p in prefixes)


def _matches(path: str, prefix: str) -> bool:
    # Whole path segments only: "/api" covers "/api" and "/api/x", not "/apiary".
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def error_response(error: AuthError) -> Response:
    """The JSON answer of ``jwtauth.http.error_parts`` as a Starlette response."""
    status, body, headers = error_parts(error)
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_auth_error(request: Request, exc: Exception) -> Response:
    """An exception handler for ``AuthError`` (Starlette's and FastAPI's signature)."""
    assert isinstance(exc, AuthError)
    if isinstance(exc, InvalidToken | InvalidGrant):
        # Outward it is one code; the reason (which check failed) is for the operator.
        log.info("%s refused: %s", exc.code, exc.reason, extra={"path": request.url.path})
    return error_response(exc)


class TokenUser(BaseUser):
    """The user of a verified token: ``identity`` is ``sub``, ``display_name`` the
    username (``sub`` for a token without one), ``claims`` everything else."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.claims.username or self.claims.sub

    @property
    def identity(self) -> str:
        return self.claims.sub


class TokenRefused(AuthenticationError):
    """A bearer token was present and bad; ``error`` says how to answer."""

    def __init__(self, error: AuthError) -> None:
        super().__init__(error.message)
        self.error = error


class JWTAuthBackend(AuthenticationBackend):
    """Starlette authentication from ``Authorization: Bearer``.

    ``request.auth.scopes`` are ``"authenticated"`` and the token's roles (not its OAuth
    ``scope``: a role and a scope of the same name are different grants). No token: None,
    so the request goes on as ``UnauthenticatedUser``.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        try:
            claims = await self.verifier.verify(
                parse_authorization(conn.headers.getlist("authorization"))
            )
        except MissingToken:
            return None
        except InvalidToken as exc:
            log.info("invalid_token refused: %s", exc.reason, extra={"path": conn.url.path})
            raise TokenRefused(exc) from None
        conn.scope.setdefault("state", {})["claims"] = claims
        return AuthCredentials(["authenticated", *claims.roles]), TokenUser(claims)


def on_auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """``on_error`` for ``AuthenticationMiddleware``: the contract's JSON answer."""
    error = exc.error if isinstance(exc, TokenRefused) else InvalidToken("authentication failed")
    return error_response(error)


class JWTAuthMiddleware:
    """Verify the bearer token of every request to ``paths`` (all paths when None),
    except those under ``exclude``."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        paths: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.paths = _normalize(paths) if paths is not None else ("/",)
        self.exclude = _normalize(exclude)

    def is_protected(self, path: str) -> bool:
        if any(_matches(path, prefix) for prefix in self.exclude):
            return False
        return any(_matches(path, prefix) for prefix in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.is_protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            token = parse_authorization(Headers(scope=scope).getlist("authorization"))
            claims = await self.verifier.verify(token)
        except InvalidToken as exc:
            log.info("invalid_token refused: %s", exc.reason, extra={"path": scope["path"]})
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
                return
            status, body, headers = error_parts(exc)
            await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)


__all__ = [
    "JWTAuthBackend",
    "JWTAuthMiddleware",
    "TokenRefused",
    "TokenUser",
    "error_response",
    "handle_auth_error",
    "on_auth_error",
]
