"""Queries on TOTP credentials and recovery codes. Every "use" is one conditional
UPDATE that only one of any number of concurrent attempts can win (see
store/sessions.py for why that holds on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import Conflict
from .account_tables import recovery_codes as rc
from .account_tables import totp_credentials as tc


@dataclass(frozen=True, slots=True)
class TotpRow:
    user_id: str
    secret_sealed: str
    confirmed: bool
    last_step: int | None


async def get(conn: AsyncConnection, user_id: str) -> TotpRow | None:
    row = (await conn.execute(tc.select().where(tc.c.user_id == user_id))).first()
    if row is None:
        return None
    return TotpRow(row.user_id, row.secret_sealed, row.confirmed_at is not None, row.last_step)


async def put_pending(conn: AsyncConnection, user_id: str, sealed: str, now: datetime) -> None:
    """Start (or restart) an enrolment; ``Conflict`` when TOTP is already on. Two
    enrolments at once: one insert fails with ``IntegrityError`` (the caller's
    transaction is then void; ``mfa.totp_service`` turns it into ``Conflict``)."""
    found = await get(conn, user_id)
    if found is not None and found.confirmed:
        raise Conflict("TOTP is already on for this account.")
    await conn.execute(tc.delete().where(tc.c.user_id == user_id, tc.c.confirmed_at.is_(None)))
    await conn.execute(tc.insert().values(
        user_id=user_id, secret_sealed=sealed, created_at=now, confirmed_at=None,
        last_step=None,
    ))


def _fresh(step: int) -> sa.ColumnElement[bool]:
    return sa.or_(tc.c.last_step.is_(None), tc.c.last_step < step)


async def confirm(conn: AsyncConnection, user_id: str, step: int, now: datetime) -> bool:
    result = await conn.execute(
        tc.update()
        .where(tc.c.user_id == user_id, tc.c.confirmed_at.is_(None), _fresh(step))
        .values(confirmed_at=now, last_step=step)
    )
    return bool(result.rowcount)


async def accept_step(conn: AsyncConnection, user_id: str, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) already was."""
    result = await conn.execute(
        tc.update()
        .where(tc.c.user_id == user_id, tc.c.confirmed_at.isnot(None), _fresh(step))
        .values(last_step=step)
    )
    return bool(result.rowcount)


async def delete(conn: AsyncConnection, user_id: str) -> bool:
    await conn.execute(rc.delete().where(rc.c.user_id == user_id))
    result = await conn.execute(tc.delete().where(tc.c.user_id == user_id))
    return bool(result.rowcount)


async def replace_recovery_codes(
    conn: AsyncConnection, user_id: str, hashes: list[str], now: datetime
) -> None:
    await conn.execute(rc.delete().where(rc.c.user_id == user_id))
    await conn.execute(
        rc.insert(), [{"user_id": user_id, "code_hash": h, "created_at": now} for h in hashes]
    )


async def use_recovery_code(
    conn: AsyncConnection, user_id: str, code_hash: str, now: datetime
) -> bool:
    result = await conn.execute(
        rc.update()
        .where(rc.c.user_id == user_id, rc.c.code_hash == code_hash, rc.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)


async def recovery_codes_left(conn: AsyncConnection, user_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(rc).where(
        rc.c.user_id == user_id, rc.c.used_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())
