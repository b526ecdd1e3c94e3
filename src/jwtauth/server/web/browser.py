"""The refresh cookie and the Origin check that guards it (API.md "Refresh cookie")."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..config import Settings

COOKIE = "refresh_token"
COOKIE_PATH = "/auth"


def _cookie(value: str, max_age: int, secure: bool) -> str:
    # Written out by hand to keep API.md's exact attribute spelling (SameSite=Strict).
    parts = [f"{COOKIE}={value}", "HttpOnly"]
    if secure:
        parts.append("Secure")
    parts += ["SameSite=Strict", f"Path={COOKIE_PATH}", f"Max-Age={max_age}"]
    return "; ".join(parts)


def set_refresh_cookie(response: Response, token: str, max_age: int, settings: Settings) -> None:
    response.headers.append("set-cookie", _cookie(token, max_age, settings.cookie_secure))


def clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.headers.append("set-cookie", _cookie("", 0, settings.cookie_secure))


def no_store(response: Response) -> None:
    """RFC 6749 section 5.1: responses carrying tokens must not be cached."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origin(request: Request, settings: Settings) -> str:
    if settings.public_url:
        return _origin_of(settings.public_url)
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}".lower()


def is_allowed_origin(request: Request, settings: Settings) -> bool:
    """A cookie-borne request may come without Origin (same-origin navigation, old
    clients) or from our own or a configured origin; any other Origin is cross-site."""
    origin = request.headers.get("origin")
    if origin is None:
        # Defence in depth: a browser that left Origin out still says through Fetch
        # Metadata when another site started the request (SameSite=Strict should already
        # have kept the cookie back; this holds if a browser or proxy gets that wrong).
        return request.headers.get("sec-fetch-site", "").lower() != "cross-site"
    origin = origin.rstrip("/").lower()
    allowed = {own_origin(request, settings), *(o.lower() for o in settings.allowed_origins)}
    return origin in allowed
