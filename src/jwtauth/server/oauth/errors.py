"""The OAuth 2.1 / OpenID Connect errors: RFC 6749 section 5.2 (token endpoint), 4.1.2.1
(authorization endpoint), OpenID Connect Core 3.1.2.6, RFC 7009, RFC 7591 and RFC 8707.

Each class declares its RFC ``code``; ``description`` is the RFC's ``error_description``
and doubles as ``message``, so this contract's envelope (``error`` + ``message``) holds
on every OAuth endpoint too. Like every ``AuthError`` they carry no HTTP status:
``responses.py`` maps them (to be folded into ``jwtauth.http`` when the endpoints are
wired, so there stays one mapping).
"""

from __future__ import annotations

from typing import ClassVar

from ...errors import AuthError


class OAuthError(AuthError):
    """Root of the OAuth errors. ``code`` is the RFC ``error`` value."""

    code: ClassVar[str] = "invalid_request"
    default_message = "The request is missing a parameter or is otherwise malformed."

    def __init__(self, description: str | None = None, *, field: str | None = None) -> None:
        super().__init__(description)
        self.field = field  # the parameter or metadata member at fault, if one is

    @property
    def description(self) -> str:
        return self.message


class InvalidRequestError(OAuthError):
    code = "invalid_request"


class InvalidClientError(OAuthError):
    """Client authentication failed (unknown client, wrong secret, wrong method)."""

    code = "invalid_client"
    default_message = "Client authentication failed."


class InvalidGrantError(OAuthError):
    """A code or refresh token that is invalid, expired, revoked, used, or another's.

    Distinct from ``jwtauth.errors.InvalidGrant`` (the first-party refresh route's 401):
    RFC 6749 answers this one with 400.
    """

    code = "invalid_grant"
    default_message = "The grant is invalid, expired, revoked or was issued to another client."


class UnauthorizedClientError(OAuthError):
    code = "unauthorized_client"
    default_message = "This client may not use this grant type."


class UnsupportedGrantTypeError(OAuthError):
    code = "unsupported_grant_type"
    default_message = "This grant type is not supported."


class InvalidScopeError(OAuthError):
    code = "invalid_scope"
    default_message = "The requested scope is invalid, unknown or not allowed for this client."


class InvalidTargetError(OAuthError):
    """RFC 8707 section 2: a resource the client may not name, or a malformed one."""

    code = "invalid_target"
    default_message = "The requested resource is invalid or not allowed for this client."


class UnsupportedTokenTypeError(OAuthError):
    """RFC 7009 section 2.2.1."""

    code = "unsupported_token_type"
    default_message = "This server does not revoke tokens of that type."


class InsufficientScopeError(OAuthError):
    """RFC 6750 section 3.1: the access token lacks the scope the resource needs."""

    code = "insufficient_scope"
    default_message = "The access token does not carry the scope this needs."


# -- the authorization endpoint (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6) ---------


class AccessDeniedError(OAuthError):
    code = "access_denied"
    default_message = "The user denied the request."


class UnsupportedResponseTypeError(OAuthError):
    code = "unsupported_response_type"
    default_message = "Only response_type=code is supported."


class UnregisteredRedirectUriError(OAuthError):
    """Shown on the error page, never redirected (RFC 6749 4.1.2.1 names no code;
    ``invalid_redirect_uri`` is RFC 7591's, and what oidc-provider shows too)."""

    code = "invalid_redirect_uri"
    default_message = "redirect_uri is missing or not registered for this client."


class LoginRequiredError(OAuthError):
    code = "login_required"
    default_message = "The user must sign in."


class ConsentRequiredError(OAuthError):
    code = "consent_required"
    default_message = "The user must consent."


class RequestNotSupportedError(OAuthError):
    code = "request_not_supported"
    default_message = "Request objects are not supported."


class RequestUriNotSupportedError(OAuthError):
    code = "request_uri_not_supported"
    default_message = "request_uri is not supported."


class ServerError(OAuthError):
    code = "server_error"
    default_message = "The server could not complete the request."


# -- client registration (RFC 7591 section 3.2.2) ----------------------------------------


class InvalidClientMetadataError(OAuthError):
    code = "invalid_client_metadata"
    default_message = "The client metadata is invalid."


class InvalidRedirectUriError(InvalidClientMetadataError):
    code = "invalid_redirect_uri"
    default_message = "A redirect URI is invalid."
