"""HTTP shapes of the OAuth endpoints' answers, framework-free (RFC 6749 5.1 and 5.2).

``error_parts`` is what ``jwtauth.http.error_parts`` is for the first-party routes; the
wiring phase folds it into that module so one place maps errors to HTTP. The web layer
turns the triple into its own response object.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    InsufficientScopeError,
    InvalidClientError,
    InvalidClientMetadataError,
    OAuthError,
    ServerError,
)

# RFC 6749 5.1: token responses are never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def status_of(error: OAuthError) -> int:
    if isinstance(error, InvalidClientError):
        return 401
    if isinstance(error, InsufficientScopeError):
        return 403
    if isinstance(error, ServerError):
        return 500
    # RFC 6749 5.2, RFC 7591 3.2.2, RFC 8707 2: everything else is 400.
    return 400


def error_parts(error: OAuthError, *, realm: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers): ``{"error", "error_description", "message"}``, and for
    ``invalid_client`` a 401 with ``WWW-Authenticate: Basic`` (RFC 6749 5.2)."""
    status = status_of(error)
    body: dict[str, Any] = {
        "error": error.code, "error_description": error.description, "message": error.message,
    }
    if isinstance(error, InvalidClientMetadataError) and error.field:
        body["field"] = error.field
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClientError):
        headers["WWW-Authenticate"] = f'Basic realm="{realm}", error="invalid_client"'
    elif isinstance(error, InsufficientScopeError):
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}", error="insufficient_scope"'
    return status, body, headers
