"""What is revoked, held in memory so that checking a token costs no I/O.

Entries name a session (``sid``) or a whole user (``sub``, for deleted users) and live
only as long as a token they could kill: revocation time + access TTL + clock skew.
The store keeps the same entries as a log; every process follows that log (and Redis,
when configured) to keep this set in step across workers and instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from .claims import Claims
from .errors import InvalidToken


class RevocationKind(StrEnum):
    """The kinds of entry in the revocation log and the Redis stream: the one spelling
    used by the store, the event bus and this list."""

    SESSION = "sid"
    USER = "sub"
    KEYS_CHANGED = "keys"  # not a revocation: the key set changed, reload it


class RevocationList:
    """Revoked sessions and users. With ``max_staleness``, the list must be confirmed
    complete (``confirm``: a read of the database log, or of a Redis feed that has not
    lost anything) at least that often, or ``verify_current`` refuses: a process cut off
    from every source of revocations fails closed instead of trusting stale state."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_staleness: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._sessions: dict[str, float] = {}
        self._users: dict[str, float] = {}
        self._next_purge = 0.0
        self._max_staleness = max_staleness
        self._monotonic = monotonic
        self._confirmed: float | None = None

    def confirm(self, at: float | None = None) -> None:
        """The list held every revocation made up to ``at`` (monotonic; now if None)."""
        moment = self._monotonic() if at is None else at
        if self._confirmed is None or moment > self._confirmed:
            self._confirmed = moment

    def is_current(self) -> bool:
        if self._max_staleness is None:
            return True
        if self._confirmed is None:
            return False
        return self._monotonic() - self._confirmed <= self._max_staleness

    def verify_current(self) -> None:
        """``InvalidToken`` when the list has not been confirmed recently enough."""
        if not self.is_current():
            raise InvalidToken("revocations unavailable")

    def add(self, kind: RevocationKind, value: str, until: float) -> None:
        if kind is RevocationKind.SESSION:
            table = self._sessions
        elif kind is RevocationKind.USER:
            table = self._users
        else:
            raise ValueError(f"{kind!r} is not a revocation")
        if table.get(value, 0.0) < until:
            table[value] = until

    def is_revoked(self, claims: Claims) -> bool:
        now = self._clock()
        if now >= self._next_purge:
            self._purge(now)
        # A token without sid (an OAuth client's) belongs to no session: only a revocation
        # of its subject can end it, never a session entry of any name.
        sid = claims.sid
        return (sid is not None and sid in self._sessions) or claims.sub in self._users

    def _purge(self, now: float) -> None:
        # Amortized: at most once a second, on the request path but O(expired) cheap.
        self._next_purge = now + 1.0
        for table in (self._sessions, self._users):
            expired = [key for key, until in table.items() if until <= now]
            for key in expired:
                del table[key]

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)
