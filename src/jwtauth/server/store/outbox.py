"""Queries on the mail outbox: enqueue inside the caller's transaction, claim due rows
(one process wins each row), and finish or reschedule them.

A claim is one UPDATE whose WHERE repeats the "free" condition. On PostgreSQL its
subquery takes ``FOR UPDATE SKIP LOCKED``: a second worker skips rows the first holds
instead of waiting, and if it does reach a row, READ COMMITTED re-checks the WHERE on
the new version and finds it claimed. SQLite has one writer at a time. Finishing a row
names the claim (``claimed_by``), so a worker whose claim expired and was taken over
cannot overwrite the new owner's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..audit import AuditEvent
from .account_tables import mail_outbox as mo
from .audit import insert_event
from .database import Database

PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    user_id: str | None
    recipient: str
    params: dict[str, Any]
    secret_sealed: str | None
    attempts: int
    expires_at: datetime
    claimed_by: str


async def insert_message(
    conn: AsyncConnection, *, kind: str, user_id: str | None, recipient: str,
    params: dict[str, Any], secret_sealed: str, now: datetime, expires_at: datetime,
) -> int:
    result = await conn.execute(
        mo.insert().values(
            kind=kind, user_id=user_id, recipient=recipient, params=params,
            secret_sealed=secret_sealed, status=PENDING, attempts=0, created_at=now,
            next_attempt_at=now, expires_at=expires_at,
        ).returning(mo.c.id)
    )
    return int(result.scalar_one())


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        mo.c.status == PENDING, mo.c.next_attempt_at <= now,
        sa.or_(mo.c.claimed_until.is_(None), mo.c.claimed_until <= now),
    )


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, *, claim_id: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxRow]:
        due = (
            sa.select(mo.c.id).where(_free(now)).order_by(mo.c.id).limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            mo.update().where(mo.c.id.in_(due), _free(now))
            .values(claimed_by=claim_id, claimed_until=until)
            .returning(
                mo.c.id, mo.c.kind, mo.c.user_id, mo.c.recipient, mo.c.params,
                mo.c.secret_sealed, mo.c.attempts, mo.c.expires_at,
            )
        )
        async with self._db.begin() as conn:
            rows = (await conn.execute(statement)).all()
        return sorted(
            (OutboxRow(r.id, r.kind, r.user_id, r.recipient, dict(r.params or {}),
                       r.secret_sealed, r.attempts, r.expires_at, claim_id) for r in rows),
            key=lambda row: row.id,
        )

    async def finish(
        self, row: OutboxRow, *, status: str, now: datetime, error: str | None,
        audit: AuditEvent | None,
    ) -> bool:
        """Delivered or abandoned: the token and the rendering values are erased."""
        async with self._db.begin() as conn:
            result = await conn.execute(
                mo.update().where(mo.c.id == row.id, mo.c.claimed_by == row.claimed_by)
                .values(
                    status=status, attempts=row.attempts + 1, finished_at=now,
                    last_error=error[:200] if error else None, secret_sealed=None,
                    params=None, claimed_by=None, claimed_until=None,
                )
            )
            if result.rowcount == 0:
                return False
            if audit is not None:
                await insert_event(conn, audit)
        return True

    async def retry_later(
        self, row: OutboxRow, *, at: datetime, error: str
    ) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                mo.update().where(mo.c.id == row.id, mo.c.claimed_by == row.claimed_by)
                .values(
                    attempts=row.attempts + 1, next_attempt_at=at, last_error=error[:200],
                    claimed_by=None, claimed_until=None,
                )
            )
        return bool(result.rowcount)

    async def prune(self, before: datetime) -> int:
        """Delete finished rows older than ``before`` (a maintenance job)."""
        async with self._db.begin() as conn:
            result = await conn.execute(
                mo.delete().where(mo.c.status != PENDING, mo.c.finished_at < before)
            )
        return int(result.rowcount)

    async def counts(self) -> dict[str, int]:
        """Rows per status (for operators and tests)."""
        query = sa.select(mo.c.status, sa.func.count()).group_by(mo.c.status)
        async with self._db.connect() as conn:
            return {status: int(n) for status, n in await conn.execute(query)}
