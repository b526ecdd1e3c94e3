"""The one mapping from an ``AuthError`` to HTTP status, JSON body and headers.

No framework here: the integrations (``jwtauth.starlette``, ``jwtauth.fastapi``) and the
server's web layer turn these parts into their own response objects.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    AuthError,
    Conflict,
    Forbidden,
    HeadersTooLarge,
    InsufficientRole,
    InsufficientScope,
    InvalidCredentials,
    InvalidGrant,
    InvalidInput,
    InvalidToken,
    MalformedRequest,
    MethodNotAllowed,
    MissingToken,
    NotFound,
    RateLimited,
    RequestTooLarge,
    Unavailable,
    WrongPassword,
)

REALM = "jwtauth"

# Most specific first: the first class in an error's MRO that is listed here wins.
_STATUS: dict[type[AuthError], int] = {
    RequestTooLarge: 413,
    HeadersTooLarge: 431,
    MalformedRequest: 400,
    InvalidInput: 422,
    WrongPassword: 403,
    InvalidCredentials: 401,
    InvalidToken: 401,
    InvalidGrant: 401,
    InsufficientRole: 403,
    InsufficientScope: 403,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    RateLimited: 429,
    Unavailable: 503,
}


def status_of(error: AuthError) -> int:
    for cls in type(error).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


def error_parts(error: AuthError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for an error, per API.md and RFC 6750 section 3."""
    status = status_of(error)
    code = error.code if status != 500 else "internal_error"
    message = error.message if status != 500 else "Internal server error."
    body: dict[str, Any] = {"error": code, "message": message}
    headers: dict[str, str] = {}
    if isinstance(error, MissingToken):
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    elif isinstance(error, InvalidToken):
        headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{error.message}"'
        )
    elif isinstance(error, InsufficientRole):
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="insufficient_scope"'
    elif isinstance(error, InsufficientScope):
        # RFC 6750 section 3: the scope attribute names what the request needs. Scope
        # tokens cannot hold a quote or a backslash (RFC 6749 section 3.3).
        needed = f', scope="{" ".join(error.scopes)}"' if error.scopes else ""
        headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", error="insufficient_scope"{needed}'
        )
    elif isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, Unavailable) and error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, InvalidInput) and error.field:
        body["field"] = error.field
    if status in (401, 403):
        headers["Cache-Control"] = "no-store"
    return status, body, headers
