"""The verified claims of an access token (RFC 9068), as the library hands them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    sid: str
    jti: str
    roles: tuple[str, ...]
    iss: str
    exp: int
    iat: int
    username: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_role(self, *roles: str) -> bool:
        """True when the token carries any of ``roles``."""
        return any(role in self.roles for role in roles)
