"""The revocation log: every process replays it into its in-memory RevocationList.

Entries are written only inside the transaction of their cause (the unit of work in
``sessions/revocation.py``, or a key change), so no entry exists for a change that rolled
back, and no committed revocation lacks its entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...revocation import RevocationKind
from .database import Database
from .tables import revocations

_KEY_NEWS_TTL = timedelta(minutes=5)
_INSERT = revocations.insert()  # the columns are the parameters' names


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    id: int
    kind: RevocationKind
    value: str
    created_at: datetime
    expires_at: datetime


async def record_revocations(
    conn: AsyncConnection, kind: RevocationKind, values: Iterable[str], *, now: datetime,
    expires_at: datetime,
) -> None:
    """Write inside the caller's transaction, so the entries commit with their cause."""
    rows = [
        {"kind": kind.value, "value": value, "created_at": now, "expires_at": expires_at}
        for value in values
    ]
    if rows:
        await conn.execute(_INSERT, rows)


def _record(row: sa.Row[Any]) -> RevocationRecord:
    return RevocationRecord(
        row.id, RevocationKind(row.kind), row.value, row.created_at, row.expires_at
    )


class RevocationLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def active(self, now: datetime) -> list[RevocationRecord]:
        query = revocations.select().where(revocations.c.expires_at > now)
        return await self._fetch(query)

    async def since(self, moment: datetime) -> list[RevocationRecord]:
        query = revocations.select().where(revocations.c.created_at >= moment)
        return await self._fetch(query)

    async def announce_keys(self, kid: str, now: datetime) -> None:
        """Tell every process to reload its keys (they follow this log)."""
        async with self._db.begin() as conn:
            await record_revocations(
                conn, RevocationKind.KEYS_CHANGED, [kid], now=now, expires_at=now + _KEY_NEWS_TTL
            )

    async def purge(self, now: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(revocations.delete().where(revocations.c.expires_at <= now))

    async def _fetch(self, query: sa.Select[Any]) -> list[RevocationRecord]:
        async with self._db.connect() as conn:
            rows = await conn.execute(query.order_by(revocations.c.id))
            return [_record(row) for row in rows]
