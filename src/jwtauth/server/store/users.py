"""Queries on the users table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import Conflict
from ..audit import AuditEvent
from ..usernames import fold
from .audit import insert_event
from .database import Database
from .tables import users


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    email: str | None
    password_hash: str
    roles: list[str]
    created_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "roles": list(self.roles),
            "created_at": self.created_at.isoformat(),
        }


def _record(row: sa.Row[Any]) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        roles=list(row.roles),
        created_at=row.created_at,
    )


# Built once: every login runs it (see store/sessions.py on prebuilt statements). Any
# case finds the account (migration 0004's index is on this expression).
_BY_USERNAME = users.select().where(
    sa.func.lower(users.c.username) == sa.bindparam("b_username")
)


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, *, username: str, password_hash: str, roles: list[str], email: str | None,
        now: datetime,
    ) -> UserRecord:
        user_id = str(uuid.uuid4())
        values = {
            "id": user_id,
            "username": username,
            "email": email,
            "password_hash": password_hash,
            "roles": roles,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.begin() as conn:
                await conn.execute(users.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            raise Conflict("That username is taken.") from exc
        return UserRecord(
            id=user_id, username=username, email=email, password_hash=password_hash,
            roles=roles, created_at=now,
        )

    async def by_username(self, username: str) -> UserRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(_BY_USERNAME, {"b_username": fold(username)})).first()
        return _record(row) if row else None

    async def by_id(self, user_id: str) -> UserRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
        return _record(row) if row else None

    async def page(self, *, limit: int, offset: int) -> list[UserRecord]:
        query = users.select().order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
        async with self._db.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def set_roles(
        self, user_id: str, roles: list[str], now: datetime, *, audit: AuditEvent | None = None
    ) -> UserRecord | None:
        async with self._db.begin() as conn:
            await conn.execute(
                users.update().where(users.c.id == user_id).values(roles=roles, updated_at=now)
            )
            row = (await conn.execute(users.select().where(users.c.id == user_id))).first()
            if row is not None and audit is not None:
                await insert_event(conn, audit)
        return _record(row) if row else None

    async def set_password_hash(self, user_id: str, password_hash: str, now: datetime) -> None:
        """A rehash at login (stronger parameters): nothing else changes with it."""
        async with self._db.begin() as conn:
            await replace_password_hash(conn, user_id, password_hash, now)

    async def count(self) -> int:
        async with self._db.connect() as conn:
            result = await conn.execute(sa.select(sa.func.count()).select_from(users))
            return int(result.scalar_one())


async def delete_user(conn: AsyncConnection, user_id: str) -> bool:
    """Delete a user with every session and token (FK cascade), in the caller's
    transaction. False if there was no such user."""
    deleted = await conn.execute(users.delete().where(users.c.id == user_id))
    return bool(deleted.rowcount)


async def replace_password_hash(
    conn: AsyncConnection, user_id: str, password_hash: str, now: datetime
) -> bool:
    """In the caller's transaction; False if there is no such user."""
    updated = await conn.execute(
        users.update()
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_at=now)
    )
    return bool(updated.rowcount)
