"""CORS for the origins in ``JWTAUTH_ALLOWED_ORIGINS``, with credentials, and nothing else.

A browser app on another origin (say ``https://app.example`` in front of
``https://auth.example``) needs CORS to read our answers and to send the refresh cookie.
Everything here is an exact allowlist: the response names the one origin that asked, never
``*`` (which browsers refuse with credentials anyway, and which would hand every site on the
web a readable answer). A request from any other origin passes through untouched, without a
single ``Access-Control-*`` header, so the browser keeps the answer from that page; a
preflight from such an origin is not answered here either (the application's 405 or 404
reaches it, and the browser then refuses to send the real request).

Starlette's ``CORSMiddleware`` is close but answers a refused preflight with a plain-text
400 that still carries ``Access-Control-Allow-Credentials`` and the method list, which breaks
the JSON error contract of API.md and says more than nothing; hence this small class.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The methods and request headers our routes use; anything else fails the preflight.
ALLOW_METHODS = ("GET", "POST", "PATCH", "DELETE")
ALLOW_HEADERS = ("Authorization", "Content-Type")
# Not CORS-safelisted, yet a client app needs them: the 429 back-off and RFC 6750's reason.
EXPOSE_HEADERS = ("Retry-After", "WWW-Authenticate")
# Seconds a browser may reuse a preflight answer (Chromium caps it at 7200).
MAX_AGE = 600


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def add_vary_origin(headers: MutableHeaders) -> None:
    """Caches must key on Origin: the same URL answers differently per origin."""
    vary = [v.strip() for value in headers.getlist("vary") for v in value.split(",")]
    if not any(v.lower() == "origin" or v == "*" for v in vary):
        headers["Vary"] = ", ".join([*filter(None, vary), "Origin"])


class CORS:
    """Pure ASGI middleware: credentialed CORS for an exact list of origins."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], max_age: int = MAX_AGE) -> None:
        self.app = app
        # "*" and "null" are never origins we trust: config.py refuses them, and a
        # library user building this class directly gets the same rule.
        self.origins = frozenset(
            o.rstrip("/").lower() for o in origins if o.strip() not in ("*", "null")
        )
        self.max_age = max_age

    def is_allowed(self, origin: str | None) -> bool:
        return origin is not None and origin.rstrip("/").lower() in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        allowed = self.is_allowed(origin)
        preflight = (
            scope["method"] == "OPTIONS"
            and _header(scope, b"access-control-request-method") is not None
        )
        if allowed and preflight:
            assert origin is not None
            await self._preflight(origin, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                add_vary_origin(headers)
                if allowed:
                    assert origin is not None
                    headers["Access-Control-Allow-Origin"] = origin
                    headers["Access-Control-Allow-Credentials"] = "true"
                    headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, send: Send) -> None:
        headers = MutableHeaders()
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Allow-Methods"] = ", ".join(ALLOW_METHODS)
        headers["Access-Control-Allow-Headers"] = ", ".join(ALLOW_HEADERS)
        headers["Access-Control-Max-Age"] = str(self.max_age)
        headers["Vary"] = "Origin"
        headers["Content-Length"] = "0"
        await send({"type": "http.response.start", "status": 204, "headers": headers.raw})
        await send({"type": "http.response.body", "body": b""})
