"""The sign-in page at ``GET /``: plain HTML, one script and one stylesheet, no build step.

The page shows the browser pattern the README recommends: the access token lives only in a
JavaScript variable, the refresh token only in the HttpOnly cookie. A strict
Content-Security-Policy (no inline script or style, no eval) keeps injected markup from
running, which is what would otherwise let an attacker read that variable.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from ..service import AuthService

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    )
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files that change with the package: revalidate rather than serve stale code.
    "Cache-Control": "no-cache",
}

# name -> media type; only these files are served, so no path from a request reaches the disk.
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def _read(name: str) -> bytes:
    return files("jwtauth.server.web").joinpath("static", name).read_bytes()


def page_router(service: AuthService) -> APIRouter:
    """``GET /`` and its two static files, each with the page's security headers."""
    router = APIRouter(include_in_schema=False)
    # Read once: the files are part of the installed package and never change while serving.
    content = {name: _read(name) for name in _FILES}

    def serve(name: str) -> Response:
        return Response(content[name], media_type=_FILES[name], headers=_HEADERS)

    @router.api_route("/", methods=["GET", "HEAD"])
    async def index() -> Response:
        return serve("index.html")

    @router.api_route("/static/app.js", methods=["GET", "HEAD"])
    async def script() -> Response:
        return serve("app.js")

    @router.api_route("/static/app.css", methods=["GET", "HEAD"])
    async def stylesheet() -> Response:
        return serve("app.css")

    return router
