"""Scopes: the RFC 6749 section 3.3 syntax, the OpenID Connect scopes and their claims.

Unknown scopes are refused (``invalid_scope``) rather than dropped: RFC 6749 3.3 allows
either, and a client that asks for something it cannot have should hear so (oidc-provider
drops them; README.md lists the difference).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidClientMetadataError, InvalidScopeError

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
# Every client may ask for these without listing them (API.md).
STANDARD_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
# Scopes about a user: meaningless for client_credentials, where there is none.
USER_SCOPES = frozenset(STANDARD_SCOPES)

# The claims each scope releases, in ID tokens and at userinfo (OIDC Core 5.4, narrowed
# to what this server knows about a user).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("preferred_username",),
    "email": ("email", "email_verified"),
}

# scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E (RFC 6749 appendix A.4).
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 2000  # what the store keeps (oauth_codes.scope, oauth_grants.scope)


def parse_scope(value: str | None, *, parameter: str = "scope") -> tuple[str, ...]:
    """The scope tokens of a space-delimited value, in order, each once."""
    if value is None or value == "":
        return ()
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScopeError("The scope is too long.", field=parameter)
    tokens = value.split(" ")
    if len(tokens) > MAX_SCOPES:
        raise InvalidScopeError("Too many scopes.", field=parameter)
    for token in tokens:
        if not _SCOPE_TOKEN.match(token):
            # Also catches empty tokens from doubled spaces: RFC 6749 3.3 allows exactly one.
            raise InvalidScopeError("A scope is malformed.", field=parameter)
    return tuple(dict.fromkeys(tokens))


def validate_registered_scope(value: str | None) -> tuple[str, ...]:
    """The extra scopes a client registers (``scope`` metadata)."""
    try:
        return parse_scope(value)
    except InvalidScopeError as exc:
        raise InvalidClientMetadataError(exc.message, field="scope") from exc


def join(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def allowed_scopes(registered: Iterable[str]) -> frozenset[str]:
    return frozenset(STANDARD_SCOPES).union(registered)


def check_allowed(requested: Iterable[str], allowed: frozenset[str]) -> None:
    unknown = [s for s in requested if s not in allowed]
    if unknown:
        # The name of the first refused scope helps the developer; it reveals nothing.
        raise InvalidScopeError(f"Scope {unknown[0]!r} is unknown or not allowed for this client.")


def claims_for(scopes: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for scope in scopes:
        names.extend(SCOPE_CLAIMS.get(scope, ()))
    return tuple(names)
