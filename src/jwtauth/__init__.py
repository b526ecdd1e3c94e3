"""jwtauth: JWT authentication for Python services.

The library surface is small and fixed (API.md "Library")::

    from jwtauth import Verifier, Claims, InvalidToken
    from jwtauth.fastapi import current_claims, require_roles

The rule of this package: every module here (the library, ``pip install jwtauth-kit``)
imports nothing of ``jwtauth.server`` and needs nothing but the base dependencies, except
the integrations, each behind its extra: ``fastapi`` and ``starlette`` (extras of those
names) and ``events`` (``redis``). tests/library/test_public_api.py holds it.
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
