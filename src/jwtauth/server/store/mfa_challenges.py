"""Queries on ``mfa_challenges``: the state between a correct password and the second
factor. Consuming is one conditional UPDATE (single use under concurrency); a wrong
code only counts an attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .account_tables import mfa_challenges as mc


@dataclass(frozen=True, slots=True)
class Challenge:
    user_id: str
    amr: list[str]
    attempts: int


async def insert(
    conn: AsyncConnection, *, token_hash: str, user_id: str, amr: list[str], now: datetime,
    ttl: int,
) -> None:
    await conn.execute(mc.insert().values(
        token_hash=token_hash, user_id=user_id, amr=amr, created_at=now,
        expires_at=now + timedelta(seconds=ttl), attempts=0,
    ))


def _live(token_hash: str, now: datetime, max_attempts: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        mc.c.token_hash == token_hash, mc.c.used_at.is_(None), mc.c.expires_at > now,
        mc.c.attempts < max_attempts,
    )


async def peek(
    conn: AsyncConnection, token_hash: str, now: datetime, *, max_attempts: int
) -> Challenge | None:
    row = (await conn.execute(mc.select().where(_live(token_hash, now, max_attempts)))).first()
    return Challenge(row.user_id, list(row.amr), row.attempts) if row else None


async def consume(
    conn: AsyncConnection, token_hash: str, now: datetime, *, max_attempts: int
) -> bool:
    result = await conn.execute(
        mc.update().where(_live(token_hash, now, max_attempts)).values(used_at=now)
    )
    return bool(result.rowcount)


async def count_attempt(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(
        mc.update().where(mc.c.token_hash == token_hash).values(attempts=mc.c.attempts + 1)
    )


async def prune(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(mc.delete().where(mc.c.expires_at < before))
    return int(result.rowcount)
