"""Queries on passkeys (WebAuthn credentials) and their challenges.

A challenge is consumed by one conditional UPDATE (unused, unexpired, right purpose
and user): single use at any instance. A sign counter moves only forward, by one
conditional UPDATE, so a cloned authenticator's stale counter is caught even when its
assertion races the genuine one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .account_tables import webauthn_challenges as wch
from .account_tables import webauthn_credentials as wc
from .tables import users


@dataclass(frozen=True, slots=True)
class PasskeyRecord:
    id: str
    user_id: str
    public_key: bytes
    sign_count: int
    transports: list[str]
    aaguid: str
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None
    user_disabled: bool = False

    def public(self) -> dict[str, object]:
        """What the page lists (no key material)."""
        return {
            "id": self.id, "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "transports": list(self.transports), "backed_up": self.backed_up,
        }


def _record(row: sa.Row[object], disabled: bool = False) -> PasskeyRecord:
    r = row._mapping
    return PasskeyRecord(
        r["id"], r["user_id"], bytes(r["public_key"]), int(r["sign_count"]),
        list(r["transports"] or []), r["aaguid"], bool(r["backed_up"]), r["created_at"],
        r["last_used_at"], disabled,
    )


async def add_challenge(
    conn: AsyncConnection, *, purpose: str, challenge: str, user_id: str | None,
    now: datetime, ttl: int,
) -> str:
    challenge_id = str(uuid.uuid4())
    await conn.execute(wch.insert().values(
        id=challenge_id, purpose=purpose, challenge=challenge, user_id=user_id,
        created_at=now, expires_at=now + timedelta(seconds=ttl),
    ))
    return challenge_id


async def take_challenge(
    conn: AsyncConnection, *, purpose: str, now: datetime, challenge_id: str | None = None,
    challenge: str | None = None, user_id: str | None = None,
) -> tuple[str, str | None] | None:
    """Consume a challenge found by id or by value; (challenge, user_id) or None."""
    conditions = [wch.c.purpose == purpose, wch.c.used_at.is_(None), wch.c.expires_at > now]
    if challenge_id is not None:
        conditions.append(wch.c.id == challenge_id)
    if challenge is not None:
        conditions.append(wch.c.challenge == challenge)
    if user_id is not None:
        conditions.append(wch.c.user_id == user_id)
    result = await conn.execute(
        wch.update().where(*conditions).values(used_at=now)
        .returning(wch.c.challenge, wch.c.user_id)
    )
    row = result.first()
    return (row.challenge, row.user_id) if row else None


async def insert_credential(conn: AsyncConnection, record: PasskeyRecord) -> None:
    await conn.execute(wc.insert().values(
        id=record.id, user_id=record.user_id, public_key=record.public_key,
        sign_count=record.sign_count, transports=record.transports, aaguid=record.aaguid,
        backed_up=record.backed_up, created_at=record.created_at, last_used_at=None,
    ))


async def credential(conn: AsyncConnection, credential_id: str) -> PasskeyRecord | None:
    query = (
        sa.select(wc, users.c.disabled_at).join(users, users.c.id == wc.c.user_id)
        .where(wc.c.id == credential_id)
    )
    row = (await conn.execute(query)).first()
    return _record(row, row.disabled_at is not None) if row else None


async def of_user(conn: AsyncConnection, user_id: str) -> list[PasskeyRecord]:
    query = wc.select().where(wc.c.user_id == user_id).order_by(wc.c.created_at, wc.c.id)
    return [_record(row) for row in await conn.execute(query)]


async def advance_counter(
    conn: AsyncConnection, credential_id: str, new_count: int, now: datetime
) -> bool:
    """Store ``new_count`` if it is greater than the stored one (or both are 0, which
    authenticators without a counter always send: WebAuthn section 6.1.1)."""
    forward = sa.or_(wc.c.sign_count < new_count,
                     sa.and_(wc.c.sign_count == 0, sa.literal(new_count) == 0))
    result = await conn.execute(
        wc.update().where(wc.c.id == credential_id, forward)
        .values(sign_count=new_count, last_used_at=now)
    )
    return bool(result.rowcount)


async def remove(conn: AsyncConnection, user_id: str, credential_id: str) -> bool:
    result = await conn.execute(
        wc.delete().where(wc.c.id == credential_id, wc.c.user_id == user_id)
    )
    return bool(result.rowcount)


async def user_by_name(conn: AsyncConnection, username: str) -> str | None:
    query = sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower())
    return (await conn.execute(query)).scalar_one_or_none()


async def prune_challenges(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(wch.delete().where(wch.c.expires_at < before))
    return int(result.rowcount)
