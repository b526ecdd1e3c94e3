"""Queries on one-time tokens (email verification, password reset).

Redemption is one conditional UPDATE (``used_at IS NULL AND expires_at > now``): of any
number of concurrent redemptions of one token exactly one changes the row, on SQLite
(one writer) and PostgreSQL (row lock, WHERE re-checked) alike. Issuing counts the
account's recent tokens in the same transaction as the insert, after taking the user's
row lock on PostgreSQL (SQLite: the insert itself takes the one write lock), so
concurrent requests cannot both slip under the hourly limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .account_tables import one_time_tokens as ott
from .tables import users


@dataclass(frozen=True, slots=True)
class Redeemed:
    user_id: str
    email_folded: str | None


@dataclass(frozen=True, slots=True)
class AccountForMail:
    id: str
    username: str
    email: str | None
    email_folded: str | None
    email_verified: bool
    disabled: bool


async def lock_user(conn: AsyncConnection, user_id: str) -> AccountForMail | None:
    """The user's row, locked for the transaction on PostgreSQL (a no-op on SQLite)."""
    query = sa.select(
        users.c.id, users.c.username, users.c.email, users.c.email_folded,
        users.c.email_verified, users.c.disabled_at,
    ).where(users.c.id == user_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return AccountForMail(row.id, row.username, row.email, row.email_folded,
                          bool(row.email_verified), row.disabled_at is not None)


async def insert_token(
    conn: AsyncConnection, *, token_hash: str, purpose: str, user_id: str,
    email_folded: str | None, now: datetime, ttl: int,
) -> None:
    await conn.execute(ott.insert().values(
        token_hash=token_hash, purpose=purpose, user_id=user_id, email_folded=email_folded,
        created_at=now, expires_at=now + timedelta(seconds=ttl),
    ))


async def issued_since(
    conn: AsyncConnection, *, user_id: str, purpose: str, since: datetime
) -> list[datetime]:
    """When the account's tokens of ``purpose`` issued after ``since`` were made,
    oldest first."""
    rows = await conn.execute(
        sa.select(ott.c.created_at)
        .where(ott.c.user_id == user_id, ott.c.purpose == purpose, ott.c.created_at > since)
        .order_by(ott.c.created_at)
    )
    return [r.created_at for r in rows]


async def redeem(
    conn: AsyncConnection, *, token_hash: str, purpose: str, now: datetime
) -> Redeemed | None:
    result = await conn.execute(
        ott.update()
        .where(ott.c.token_hash == token_hash, ott.c.purpose == purpose,
               ott.c.used_at.is_(None), ott.c.expires_at > now)
        .values(used_at=now)
        .returning(ott.c.user_id, ott.c.email_folded)
    )
    row = result.first()
    return Redeemed(row.user_id, row.email_folded) if row else None


async def spend_all(conn: AsyncConnection, *, user_id: str, purpose: str, now: datetime) -> int:
    """Mark every unused token of the account for ``purpose`` used (after a reset, the
    other reset mails in the inbox stop working)."""
    result = await conn.execute(
        ott.update()
        .where(ott.c.user_id == user_id, ott.c.purpose == purpose, ott.c.used_at.is_(None))
        .values(used_at=now)
    )
    return int(result.rowcount)


async def mark_email_verified(
    conn: AsyncConnection, *, user_id: str, email_folded: str | None, now: datetime
) -> bool:
    """Only if the account still has the address the token was mailed to."""
    if email_folded is None:
        return False
    result = await conn.execute(
        users.update()
        .where(users.c.id == user_id, users.c.email_folded == email_folded)
        .values(email_verified=True, updated_at=now)
    )
    return bool(result.rowcount)


async def users_for_forgot(
    conn: AsyncConnection, *, email: str | None, username: str | None
) -> list[str]:
    """Ids of the accounts a forgot-password request names: by folded email (several
    accounts may share one) or by user name ignoring case."""
    if email is not None:
        query = sa.select(users.c.id).where(users.c.email_folded == email)
    elif username is not None:
        query = sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower())
    else:
        return []
    return [r.id for r in await conn.execute(query)]


async def prune(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(ott.delete().where(ott.c.expires_at < before))
    return int(result.rowcount)
