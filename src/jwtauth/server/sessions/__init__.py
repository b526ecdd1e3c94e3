"""Refresh-token families: the token primitives, rotation with its grace and reuse rule,
and the one unit of work that revokes (``revocation.py``). No web framework here."""

from .revocation import DeletedUser, Ended, OneSession, Revoker, UserSessions, remember_in
from .rotation import Grace, Invalid, Outcome, Reused, Rotated, Rotator, judge
from .service import SessionPolicy, SessionService, TokenPair
from .tokens import hash_refresh_token, new_refresh_token

__all__ = [
    "DeletedUser",
    "Ended",
    "Grace",
    "Invalid",
    "OneSession",
    "Outcome",
    "Reused",
    "Revoker",
    "Rotated",
    "Rotator",
    "SessionPolicy",
    "SessionService",
    "TokenPair",
    "UserSessions",
    "hash_refresh_token",
    "judge",
    "new_refresh_token",
    "remember_in",
]
