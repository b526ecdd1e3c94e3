"""The account-state columns of ``users`` added by migration 0006: disabled and
email-verified. These are the statements phase 2's unit of work runs; they take the
caller's connection so that a disable commits together with the revocation of every
session and token of the user (``sessions`` package) and its audit row.

A disabled user cannot sign in by any path (password, MFA step, passkey, refresh):
each path reads ``disabled_at`` (``is_disabled``; passkeys: ``store.passkeys``).
Enabling clears the mark and nothing else: the sessions revoked at disable stay dead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..mail.address import fold_email
from .tables import users


async def mark_disabled(conn: AsyncConnection, user_id: str, now: datetime) -> bool:
    """True if the user existed and was enabled (a second disable changes nothing)."""
    result = await conn.execute(
        users.update().where(users.c.id == user_id, users.c.disabled_at.is_(None))
        .values(disabled_at=now, updated_at=now)
    )
    return bool(result.rowcount)


async def mark_enabled(conn: AsyncConnection, user_id: str, now: datetime) -> bool:
    result = await conn.execute(
        users.update().where(users.c.id == user_id, users.c.disabled_at.isnot(None))
        .values(disabled_at=None, updated_at=now)
    )
    return bool(result.rowcount)


async def is_disabled(conn: AsyncConnection, user_id: str) -> bool:
    query = sa.select(users.c.disabled_at).where(users.c.id == user_id)
    return (await conn.execute(query)).scalar_one_or_none() is not None


async def set_email(conn: AsyncConnection, user_id: str, email: str | None, now: datetime
                    ) -> None:
    """A new address is unverified until its own mail is followed (tokens mailed to the
    old one stop working: they are bound to the folded address)."""
    await conn.execute(
        users.update().where(users.c.id == user_id).values(
            email=email, email_folded=fold_email(email) if email else None,
            email_verified=False, updated_at=now,
        )
    )
