"""The revocation log: every process replays it into its in-memory RevocationList."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .tables import revocations

KEYS_CHANGED = "keys"  # a log entry that is not a revocation: the key set changed


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    id: int
    kind: str
    value: str
    created_at: datetime
    expires_at: datetime


async def record_revocation(
    conn: AsyncConnection, *, kind: str, value: str, now: datetime, expires_at: datetime
) -> None:
    """Write inside the caller's transaction, so the revocation commits with its cause."""
    await conn.execute(
        revocations.insert().values(kind=kind, value=value, created_at=now, expires_at=expires_at)
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
            await record_revocation(
                conn, kind=KEYS_CHANGED, value=kid, now=now, expires_at=now + timedelta(minutes=5)
            )

    async def purge(self, now: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(revocations.delete().where(revocations.c.expires_at <= now))

    async def _fetch(self, query: sa.Select[Any]) -> list[RevocationRecord]:
        async with self._db.connect() as conn:
            rows = await conn.execute(query.order_by(revocations.c.id))
            return [
                RevocationRecord(r.id, r.kind, r.value, r.created_at, r.expires_at) for r in rows
            ]
