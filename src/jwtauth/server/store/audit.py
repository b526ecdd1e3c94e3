"""Queries on the audit trail: write an event (alone or inside the caller's
transaction) and read pages of it, newest first, with an id cursor."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..audit import AuditEvent, AuditEventName, AuditWriteError
from .database import Database
from .outage import STORE_ERRORS
from .tables import audit_events as ae
from .tables import users

_INSERT = ae.insert().returning(ae.c.id)


async def insert_event(conn: AsyncConnection, event: AuditEvent) -> int:
    """Write inside the caller's transaction, so the event commits with its cause."""
    username: object = event.username
    if username is None and event.user_id is not None:
        # Known by id only (a logout with the refresh cookie alone): name it, so that
        # `audit tail --user NAME` finds it.
        username = sa.select(users.c.username).where(users.c.id == event.user_id).scalar_subquery()
    values = {
        "created_at": event.created_at, "event": event.event.value, "user_id": event.user_id,
        "username": username, "client_ip": event.client_ip, "user_agent": event.user_agent,
        "session_id": event.session_id, "actor_id": event.actor_id, "detail": event.detail,
    }
    if isinstance(username, str | None):  # the common case: a statement built once
        result = await conn.execute(_INSERT, values)
    else:
        result = await conn.execute(ae.insert().values(**values).returning(ae.c.id))
    return int(result.scalar_one())


def _event(row: sa.Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=row.id, event=AuditEventName(row.event), created_at=row.created_at,
        user_id=row.user_id, username=row.username, client_ip=row.client_ip,
        user_agent=row.user_agent, session_id=row.session_id, actor_id=row.actor_id,
        detail=dict(row.detail or {}),
    )


def _filtered(
    query: sa.Select[Any], *, user_id: str | None, username: str | None,
    event: AuditEventName | None, since: datetime | None,
) -> sa.Select[Any]:
    if user_id is not None:
        query = query.where(ae.c.user_id == user_id)
    if username is not None:
        query = query.where(ae.c.username == username)
    if event is not None:
        query = query.where(ae.c.event == event.value)
    if since is not None:
        query = query.where(ae.c.created_at >= since)
    return query


class AuditStore:
    """The ``AuditSink`` of ``jwtauth.audit`` on the database, plus the readers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, event: AuditEvent) -> AuditEvent:
        try:
            async with self._db.begin() as conn:
                event_id = await insert_event(conn, event)
        except STORE_ERRORS as exc:
            raise AuditWriteError("audit event not stored") from exc
        return replace(event, id=event_id)

    async def prune(self, before: datetime, *, batch: int = 5000) -> int:
        """Delete events created before ``before``, ``batch`` rows per transaction so a
        first prune of a large table never holds the writer lock for long. Returns the
        number deleted. Ids are never reused (autoincrement), so cursors stay valid."""
        deleted = 0
        while True:
            oldest = (
                sa.select(ae.c.id).where(ae.c.created_at < before).order_by(ae.c.id).limit(batch)
            )
            async with self._db.begin() as conn:
                result = await conn.execute(ae.delete().where(ae.c.id.in_(oldest)))
            deleted += result.rowcount
            if result.rowcount < batch:
                return deleted

    async def page(
        self, *, limit: int, before: int | None = None, user_id: str | None = None,
        username: str | None = None, event: AuditEventName | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """At most ``limit`` events with ids below ``before``, newest first."""
        query = _filtered(
            ae.select(), user_id=user_id, username=username, event=event, since=since
        )
        if before is not None:
            query = query.where(ae.c.id < before)
        query = query.order_by(ae.c.id.desc()).limit(limit)
        async with self._db.connect() as conn:
            return [_event(row) for row in await conn.execute(query)]

    async def after(
        self, last_id: int, *, limit: int, user_id: str | None = None,
        username: str | None = None, event: AuditEventName | None = None,
    ) -> list[AuditEvent]:
        """Events with ids above ``last_id``, oldest first (``audit tail --follow``).

        On PostgreSQL ids are handed out before commit, so a long transaction may commit
        an id below one already seen; a follower can miss such an event, which is why
        the paging API (not this) is the record.
        """
        query = _filtered(
            ae.select(), user_id=user_id, username=username, event=event, since=None
        ).where(ae.c.id > last_id)
        async with self._db.connect() as conn:
            rows = await conn.execute(query.order_by(ae.c.id).limit(limit))
            return [_event(row) for row in rows]

