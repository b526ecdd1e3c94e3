"""jwtauth: JWT authentication for Python services.

The library surface is small and fixed (API.md "Library")::

    from jwtauth import Verifier, Claims, InvalidToken
    from jwtauth.fastapi import current_claims, require_roles
"""

from .claims import Claims
from .errors import (
    AuthError,
    ConfigError,
    Conflict,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidCredentials,
    InvalidGrant,
    InvalidInput,
    InvalidToken,
    MissingToken,
    NotFound,
    RateLimited,
)
from .verifier import Verifier

__all__ = [
    "AuthError",
    "Claims",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "InsufficientRole",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidGrant",
    "InvalidInput",
    "InvalidToken",
    "MissingToken",
    "NotFound",
    "RateLimited",
    "Verifier",
]
