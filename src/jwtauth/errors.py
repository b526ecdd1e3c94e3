"""One error hierarchy for the whole package.

Every error carries a stable machine-readable ``code`` (the contract) and a human
sentence. Core errors know nothing of HTTP: ``jwtauth.http`` alone maps them to
status, body and headers.
"""

from __future__ import annotations

from typing import ClassVar


class AuthError(Exception):
    """Root of every error jwtauth raises on purpose."""

    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ConfigError(AuthError):
    """The server cannot start safely with the given configuration."""

    code = "config_error"
    default_message = "The configuration is not usable."


class MalformedRequest(AuthError):
    code = "invalid_request"
    default_message = "The request body is not valid JSON."


class InvalidInput(AuthError):
    code = "invalid_request"
    default_message = "The request failed validation."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RequestTooLarge(MalformedRequest):
    """The request body is over the configured limit (HTTP 413)."""

    default_message = "The request body is too large."


class HeadersTooLarge(MalformedRequest):
    """The request line and headers are over the configured limit (HTTP 431)."""

    default_message = "The request headers are too large."


class InvalidCredentials(AuthError):
    code = "invalid_credentials"
    default_message = "Invalid username or password."


class WrongPassword(InvalidCredentials):
    """The current password given to change a password is wrong (403, not 401)."""

    default_message = "The current password is wrong."


class InvalidToken(AuthError):
    """The access token is missing, malformed, expired, revoked or not ours.

    Outward this is always one ``invalid_token``; ``reason`` is for the log only, so a
    caller cannot learn which check failed.
    """

    code = "invalid_token"
    default_message = "The access token is missing, invalid or expired."

    def __init__(self, reason: str = "invalid", message: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class MissingToken(InvalidToken):
    """No bearer token at all: RFC 6750 section 3.1 says to send no error code then."""

    default_message = "An access token is required."

    def __init__(self) -> None:
        super().__init__("missing")


class InvalidGrant(AuthError):
    code = "invalid_grant"
    default_message = "The refresh token is invalid, expired or revoked."

    def __init__(self, reason: str = "invalid", message: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class InsufficientRole(AuthError):
    code = "insufficient_role"
    default_message = "You do not have the role this needs."


class InsufficientScope(AuthError):
    """The token lacks an OAuth scope the request needs (RFC 6750 section 3.1)."""

    code = "insufficient_scope"
    default_message = "The access token does not carry the scope this needs."

    def __init__(self, scopes: tuple[str, ...] = (), message: str | None = None) -> None:
        super().__init__(message)
        self.scopes = scopes  # what the request needs, for the WWW-Authenticate challenge


class Forbidden(AuthError):
    code = "forbidden"
    default_message = "You may not do this."


class NotFound(AuthError):
    code = "not_found"
    default_message = "Not found."


class MethodNotAllowed(AuthError):
    code = "method_not_allowed"
    default_message = "This method is not allowed here."


class Conflict(AuthError):
    code = "conflict"
    default_message = "This conflicts with existing data."


class RateLimited(AuthError):
    code = "rate_limited"
    default_message = "Too many attempts; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Unavailable(AuthError):
    code = "unavailable"
    default_message = "The service is not available right now."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
