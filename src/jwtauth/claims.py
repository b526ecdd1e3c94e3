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

    ``sid`` is None for a token that belongs to no sign-in session: an OAuth client's own
    token (``client_credentials``), which names the client in ``sub`` and ``client_id``
    and is authorised by ``scope``, not by ``roles``.
    """

    sub: str
    sid: str | None
    jti: str
    roles: tuple[str, ...]
    iss: str
    exp: int
    iat: int
    username: str | None = None
    raw: Mapping[str, Any] = _EMPTY

    @property
    def scope(self) -> tuple[str, ...]:
        """The OAuth scopes of the token (RFC 9068 section 2.2.3: ``scope`` is one
        space-separated string); empty when it has none. The claims check has made sure
        that a ``scope`` claim is a string."""
        value = self.raw.get("scope")
        return tuple(value.split()) if isinstance(value, str) else ()

    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to (RFC 9068 section 2.2), or None."""
        value = self.raw.get("client_id")
        return value if isinstance(value, str) else None

    def has_role(self, *roles: str) -> bool:
        """True when the token carries any of ``roles``."""
        return any(role in self.roles for role in roles)

    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
        granted = self.scope
        return all(scope in granted for scope in scopes)

    def __hash__(self) -> int:
        # ``raw`` is a view of a dict and cannot be hashed; the other fields decide.
        return hash(self[:8])
