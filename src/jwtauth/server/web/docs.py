"""GET /docs: the Swagger UI page, under a Content-Security-Policy of its own.

FastAPI's page loads Swagger UI from a CDN and configures it in an inline script. Rather
than leave the page without a policy (it is HTML on the auth server's own origin, next to
the refresh cookie's path), the policy names the CDN for scripts and styles and allows the
one inline script by its SHA-256, computed from the page as built: no 'unsafe-inline'
for scripts, no connections but to this server (the OpenAPI document, "Try it out").
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """The page with its policy (built once: it never changes while the server runs)."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=title)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page.body)
    )
    policy = (
        f"default-src 'none'; script-src {CDN} {hashes}; "
        # Swagger UI sets element styles from script; those need 'unsafe-inline' for
        # styles only, which cannot run code.
        f"style-src {CDN} 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(page.body, headers={"Content-Security-Policy": policy})


def docs_router(openapi_url: str, title: str) -> APIRouter:
    router = APIRouter()
    built = docs_page(openapi_url, title)
    body, policy = built.body, built.headers["content-security-policy"]

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": policy})

    return router
