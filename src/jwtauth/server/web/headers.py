"""Security headers on every response, and a boundary that makes a crash a response too.

``SecurityHeaders`` is the outermost layer of the application, outside the fast path of
``web.fastpath``, so every answer gets the same headers whichever code produced it: a route,
an error handler, the fast path, a CORS preflight or ``ErrorBoundary``'s 500. A header a
route set itself wins (the sign-in page's scripted Content-Security-Policy, the JWKS's
public ``Cache-Control``); the rest are defaults:

- ``X-Content-Type-Options: nosniff``: a JSON body is never sniffed into HTML or script.
- ``Referrer-Policy: no-referrer``: URLs of this server never leak to other sites.
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no clickjacking frame.
- ``Cross-Origin-Opener-Policy: same-origin``: no window handle for an opener on another
  site (cross-window attacks, XS-Leaks).
- ``Cross-Origin-Resource-Policy: same-origin``: other sites cannot embed our answers as
  no-cors resources (Spectre-style reads); ``cross-origin`` under ``/.well-known/``,
  which other origins are meant to fetch.
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` on everything
  that is not HTML: an API answer rendered as a document runs nothing and loads nothing.
- ``Cache-Control: no-store`` unless a route says otherwise: tokens and user data are never
  kept by a browser or a shared cache (RFC 6749 section 5.1), even from a route that forgot.
- ``Strict-Transport-Security`` when ``JWTAUTH_PUBLIC_URL`` is https: browsers then never
  send the refresh cookie or a password over plain HTTP to this host.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import AuthError
from ...starlette import error_response

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# One year, the minimum for browsers' preload lists; includeSubDomains covers only hosts
# under the auth server's own name.
HSTS = "max-age=31536000; includeSubDomains"
PUBLIC_PREFIX = "/.well-known/"

_DEFAULTS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


def is_https(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith("https://")


def secure_headers(headers: MutableHeaders, path: str, *, hsts: bool) -> None:
    """Add the security headers a response lacks (see the module docstring)."""
    for name, value in _DEFAULTS:
        headers.setdefault(name, value)
    public = path.startswith(PUBLIC_PREFIX)
    headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin" if public else "same-origin")
    if "content-security-policy" not in headers:
        # HTML pages bring their own policy (page.py, docs.py).
        if not headers.get("content-type", "").lower().startswith("text/html"):
            headers["Content-Security-Policy"] = API_CONTENT_SECURITY_POLICY
    if hsts:
        headers["Strict-Transport-Security"] = HSTS


class SecurityHeaders:
    """Pure ASGI middleware: the outermost layer, so every response gets the headers."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure_headers(MutableHeaders(scope=message), path, hsts=self.hsts)
            await send(message)

        await self.app(scope, receive, send_secured)


class ErrorBoundary:
    """Answers an unhandled exception with the API's 500 from inside the header layers.

    Starlette renders a 500 in ``ServerErrorMiddleware``, outside every added middleware,
    so that answer would miss the security and CORS headers. This layer sends the same
    body (``web.errors``, the one mapping) through them, then re-raises: the outer
    middleware still logs the exception through the app's handler and sends nothing more,
    because a response has started.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            # Deliberately broad: this is the last place an answer can still be sent.
            if not started:
                await error_response(AuthError())(scope, receive, send)
            raise
