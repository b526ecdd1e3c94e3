"""Refresh-token primitives: opaque, random, stored only as hashes.

A successor token is also kept *sealed* with the token it replaced, so that within the
reuse grace window the same successor can be handed to a second tab that presents the
old token, while the database alone never reveals it (the pad needs the old token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32  # 256 bits of randomness (API.md: at least 256)
_SEAL_LABEL = b"jwtauth refresh successor v1"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    # A plain SHA-256 suffices: the input is 256 random bits, not a guessable password.
    return hashlib.sha256(token.encode()).hexdigest()


def _pad(presented: str) -> bytes:
    return hmac.new(presented.encode(), _SEAL_LABEL, hashlib.sha256).digest()


def seal_successor(successor: str, presented: str) -> str:
    raw = base64.urlsafe_b64decode(successor + "=" * (-len(successor) % 4))
    sealed = bytes(a ^ b for a, b in zip(raw, _pad(presented), strict=True))
    return base64.urlsafe_b64encode(sealed).decode()


def open_successor(sealed: str, presented: str) -> str:
    raw = base64.urlsafe_b64decode(sealed)
    plain = bytes(a ^ b for a, b in zip(raw, _pad(presented), strict=True))
    return base64.urlsafe_b64encode(plain).decode().rstrip("=")


# What any token we issue looks like (base64url; 43 characters today). Anything else is
# refused before it is hashed or looked up: an access token, a 100 kB string, text that
# is not ASCII (API.md: a bad refresh token is invalid_grant, whatever its shape).
_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,256}")


def is_refresh_token_shaped(value: str) -> bool:
    return _SHAPE.fullmatch(value) is not None
