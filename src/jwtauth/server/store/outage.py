"""When the store goes away (issue 13, point 12): which errors mean "the database does not
answer", and one log line when that starts and one when it ends.

During an outage every request that needs the store fails the same way; a traceback per
request says nothing the first line did not, floods the log and hides everything else.
``StoreHealth`` is told of each failure (by the web layer's handler, which answers 503,
and by the background loops) and logs the first; an engine event tells it of the next
statement that succeeds, and it logs that the outage ended, with its length and count.

What counts as an outage: the database cannot be reached or dropped the connection
(``OSError`` from connecting, asyncpg's connection, shutdown and resource errors,
SQLAlchemy's invalidated connections, ``OperationalError``/``InterfaceError``), or no
pooled connection came free in time (``sqlalchemy.exc.TimeoutError``). On SQLite a
database locked for longer than the busy timeout is one too. Errors of a statement
itself (an integrity violation, a bug in a query) are not: they stay 500s with their
traceback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("jwtauth.store")

# What a caller of the store may see during an outage (for ``except``): the outage
# itself is then decided by ``is_outage``.
STORE_ERRORS: tuple[type[Exception], ...] = (
    OSError, sa.exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError,
)
_ASYNCPG_OUTAGE = (
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.InterfaceError,  # the connection is closed
)
RETRY_AFTER = 5  # seconds: what a 503 of an outage suggests


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the store is unreachable, not that a statement was wrong."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        ):
            return True
        # SQLAlchemy's asyncpg adapter chains the driver's own exception.
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return cause is not None and is_outage(cause)
    return isinstance(exc, (sa.exc.TimeoutError, OSError, *_ASYNCPG_OUTAGE))


class StoreHealth:
    """Whether the store answered last, and the two log lines of each outage."""

    def __init__(self) -> None:
        self.down_since: float | None = None  # monotonic
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            # The type and message only: no traceback, no statement parameters.
            log.warning(
                "store unavailable (%s: %s); answering 503 until it answers again",
                type(exc).__name__, _first_line(exc),
                extra={"event": "store_unavailable"},
            )

    def answered(self) -> None:
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        failures, self.down_since, self.failures = self.failures, None, 0
        log.warning(
            "store available again after %.1f s (%d failed operations meanwhile)",
            lasted, failures, extra={"event": "store_available", "seconds": round(lasted, 1)},
        )

    def watch(self, engine: AsyncEngine) -> None:
        """Hear of every statement that succeeds on ``engine`` (cheap: one comparison)."""

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _answered(*_args: Any) -> None:
            if self.down_since is not None:
                self.answered()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


__all__ = ["RETRY_AFTER", "STORE_ERRORS", "StoreHealth", "is_outage"]
