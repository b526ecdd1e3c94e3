"""The back-channel logout outbox: "sent once per event by one instance, retried with
back-off while it answers 5xx" (API.md).

``enqueue`` runs inside the transaction that ends the sessions, so a logout and its
notifications commit together or not at all, and the unique (sid, client) key makes a
second path ending the same session add nothing. A sender claims due rows with a lease:
one conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single
writer otherwise) whose WHERE is re-checked after any lock wait, so two instances never
hold one row; a crashed sender's lease runs out and another picks the row up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .oauth import insert_ignoring_conflict
from .oauth_tables import oauth_clients, oauth_grants
from .oauth_tables import oauth_logout_outbox as box


@dataclass(frozen=True, slots=True)
class LogoutJob:
    id: int
    client_id: str
    sid: str
    sub: str
    target: str
    attempts: int


async def enqueue(conn: AsyncConnection, session_ids: Sequence[str], now: datetime) -> int:
    """In the caller's transaction: a row for each family among or under ``session_ids``
    whose client has a ``backchannel_logout_uri``. Returns how many were new."""
    if not session_ids:
        return 0
    ids = list(session_ids)
    query = (
        sa.select(oauth_grants.c.session_id, oauth_grants.c.user_id, oauth_clients.c.client_id,
                  oauth_clients.c.metadata)
        .join(oauth_clients, oauth_clients.c.client_id == oauth_grants.c.client_id)
        .where(sa.or_(oauth_grants.c.session_id.in_(ids), oauth_grants.c.parent_sid.in_(ids)))
    )
    added = 0
    for row in await conn.execute(query):
        target = row.metadata.get("backchannel_logout_uri")
        if not target:
            continue
        added += await insert_ignoring_conflict(conn, box, {
            "client_id": row.client_id, "sid": row.session_id, "sub": row.user_id,
            "target": target, "created_at": now, "next_attempt_at": now, "attempts": 0,
        })
    return added


def _due(now: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        box.c.delivered_at.is_(None),
        box.c.failed_at.is_(None),
        box.c.next_attempt_at <= now,
        sa.or_(box.c.claimed_until.is_(None), box.c.claimed_until < now),
    ]


def _job(row: sa.Row[Any]) -> LogoutJob:
    return LogoutJob(row.id, row.client_id, row.sid, row.sub, row.target, row.attempts)


class LogoutOutbox:
    def __init__(self, db: Database, *, lease: int = 60) -> None:
        self._db = db
        self._lease = timedelta(seconds=lease)

    async def enqueue(self, session_ids: Sequence[str], now: datetime) -> int:
        """``enqueue`` in a transaction of its own (the CLI, tests)."""
        async with self._db.begin() as conn:
            return await enqueue(conn, session_ids, now)

    async def claim_due(self, instance: str, now: datetime, *, limit: int = 20) -> list[LogoutJob]:
        candidates = (
            sa.select(box.c.id).where(*_due(now)).order_by(box.c.id).limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        # The due conditions again on the outer statement: re-evaluated after a lock wait,
        # they keep a row another instance just claimed from being claimed twice.
        claim = (
            box.update()
            .where(box.c.id.in_(candidates), *_due(now))
            .values(claimed_by=instance, claimed_until=now + self._lease)
            .returning(*box.c)
        )
        async with self._db.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_job(row) for row in rows), key=lambda job: job.id)

    async def _finish(self, job: LogoutJob, instance: str, values: dict[str, Any]) -> bool:
        async with self._db.begin() as conn:
            done = await conn.execute(
                box.update()
                .where(box.c.id == job.id, box.c.claimed_by == instance)
                .values(claimed_by=None, claimed_until=None, attempts=job.attempts + 1,
                        **values)
            )
        return bool(done.rowcount)

    async def delivered(self, job: LogoutJob, instance: str, *, now: datetime,
                        status: int) -> bool:
        return await self._finish(job, instance, {"delivered_at": now, "last_status": status})

    async def retry_at(self, job: LogoutJob, instance: str, *, at: datetime,
                       status: int | None) -> bool:
        return await self._finish(job, instance, {"next_attempt_at": at, "last_status": status})

    async def failed(self, job: LogoutJob, instance: str, *, now: datetime,
                     status: int | None) -> bool:
        return await self._finish(job, instance, {"failed_at": now, "last_status": status})

    async def counts(self) -> dict[str, int]:
        """Pending, delivered and failed rows (for /metrics and tests)."""
        state = sa.case(
            (box.c.delivered_at.is_not(None), "delivered"),
            (box.c.failed_at.is_not(None), "failed"),
            else_="pending",
        )
        query = sa.select(state.label("state"), sa.func.count()).group_by(state)
        async with self._db.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}
