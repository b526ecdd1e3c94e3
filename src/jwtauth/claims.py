"""The verified claims of an access token (RFC 9068), as the library hands them out."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Claims(NamedTuple):
    """Immutable, because one object serves every repeat of a token from the cache.

    A tuple rather than a frozen dataclass: it is built for every fresh token, and a tuple
    costs a fifth as much to build. ``raw`` is a read-only view of every claim as parsed
    (a list inside it is the parsed list: read it, do not change it).
    """

    sub: str
    sid: str
    jti: str
    roles: tuple[str, ...]
    iss: str
    exp: int
    iat: int
    username: str | None = None
    raw: Mapping[str, Any] = _EMPTY

    def has_role(self, *roles: str) -> bool:
        """True when the token carries any of ``roles``."""
        return any(role in self.roles for role in roles)

    def __hash__(self) -> int:
        # ``raw`` is a view of a dict and cannot be hashed; the other fields decide.
        return hash(self[:8])
