"""GET /docs (Swagger UI) and GET /redoc (ReDoc), served from the package: no CDN.

FastAPI's own pages load both from a CDN and start them with an inline script, so without
internet they are blank, and their policy has to trust a third party's code on the auth
server's origin (next to the refresh cookie's path). Here both libraries are vendored
under ``static/docs/`` at pinned versions (``VENDORED.json`` names the npm packages and
their integrity, and the SHA-256 of every file; the licences lie beside them) and each
page starts its library with a small script file of ours. The pages' policy then names
this server alone:

- ``script-src 'self'``: the library and the init script; no inline script, no eval.
- ``style-src 'self'`` on /docs. ReDoc builds its styles at run time (styled-components
  inserts ``<style>`` elements), so /redoc also allows styles carrying a nonce made fresh
  for each answer, which styled-components reads from ``<meta property="csp-nonce">``.
  A nonce is for styles only: it lets no script run.
- ``img-src 'self' data:``: Swagger UI's stylesheet draws its icons as ``data:`` SVGs.
- ``worker-src blob:`` on /redoc: ReDoc builds its search worker from a Blob, which takes
  script already running on the page; no file from elsewhere can become a worker.
- ``connect-src 'self'``: the OpenAPI document and "Try it out" reach this server only.
- ``frame-ancestors 'none'``, ``base-uri 'none'``, ``form-action 'none'``,
  ``object-src 'none'``.

Assets are read once, on first request, and answered with an ``ETag``, so a browser
revalidates the 2 MB bundles instead of downloading them again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import secrets
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ...errors import NotFound

ASSET_PREFIX = "/docs/assets/"

# name -> media type; only these files are served, so no path from a request reaches the disk.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-init.js": "text/javascript; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "redoc-init.js": "text/javascript; charset=utf-8",
}

_COMMON = (
    "default-src 'none'",
    "script-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
)
SWAGGER_POLICY = "; ".join((*_COMMON, "style-src 'self'"))


# The one stylesheet ReDoc's bundle inserts as it loads, before any nonce can reach it: its
# element is added empty, then filled, and each state is checked. A new ReDoc that changes
# it shows as a violation in tests/e2e/test_docs_offline.py.
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty element
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's CSS
)


def redoc_policy(nonce: str) -> str:
    styles = " ".join(("'self'", f"'nonce-{nonce}'", *REDOC_STYLE_HASHES))
    return "; ".join((*_COMMON, f"style-src {styles}", "worker-src blob:"))


_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{prefix}swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{prefix}swagger-ui-bundle.js"></script>
<script src="{prefix}swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" href="data:,">
</head>
<body>
<div id="redoc" data-openapi-url="{openapi_url}" data-nonce="{{nonce}}"></div>
<script src="{prefix}redoc.standalone.js"></script>
<script src="{prefix}redoc-init.js"></script>
</body>
</html>
"""


# ReDoc's sidebar footer shows Redocly's logo from their CDN, whatever the options: served
# with an empty data: image instead, which fails to load and makes the footer drop the logo.
_REWRITES = {
    "redoc.standalone.js": (b'"https://cdn.redoc.ly/redoc/logo-mini.svg"', b'"data:,"'),
}


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and a strong ETag (package data: it never changes while serving)."""
    body = files("jwtauth.server.web").joinpath("static", "docs", name).read_bytes()
    if name in _REWRITES:
        old, new = _REWRITES[name]
        if body.count(old) != 1:
            raise RuntimeError(f"{name} changed: update web/docs.py's rewrite of it")
        body = body.replace(old, new)
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode()
    return body, f'"{digest}"'


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """``GET /docs``, ``GET /redoc`` and the files they load, each under its own policy."""
    router = APIRouter(include_in_schema=False)
    values = {"title": html.escape(title), "openapi_url": html.escape(openapi_url),
              "prefix": ASSET_PREFIX}
    swagger_page = _SWAGGER_PAGE.format(**values)
    redoc_page = _REDOC_PAGE.format(**values)

    @router.api_route("/docs", methods=["GET", "HEAD"])
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_page, headers={"Content-Security-Policy": SWAGGER_POLICY})

    @router.api_route("/redoc", methods=["GET", "HEAD"])
    async def redoc() -> HTMLResponse:
        nonce = secrets.token_urlsafe(18)
        return HTMLResponse(redoc_page.replace("{nonce}", nonce),
                            headers={"Content-Security-Policy": redoc_policy(nonce)})

    @router.api_route(ASSET_PREFIX + "{name}", methods=["GET", "HEAD"])
    async def asset(name: str, request: Request) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound()
        body, etag = _asset(name)
        # Revalidate each time (the files change with the package), but send them only once.
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    return router
