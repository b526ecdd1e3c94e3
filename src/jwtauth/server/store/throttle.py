"""Queries of the account-wide sign-in throttle (ratelimit_account.py): failures per
account from any address, and the client addresses that signed in to it. Both tables
hold digests only. A failure is one INSERT (concurrent failures all count, no
read-modify-write); the count is a range read on (subject, at)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .account_tables import account_failures as af
from .account_tables import account_known_clients as kc
from .database import Database


class ThrottleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_failure(self, subject: str, at: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(af.insert().values(subject=subject, at=at))

    async def failures_since(self, subject: str, since: datetime) -> tuple[int, datetime | None]:
        """(how many, the latest) failures of ``subject`` after ``since``."""
        query = sa.select(sa.func.count(), sa.func.max(af.c.at)).where(
            af.c.subject == subject, af.c.at > since
        )
        async with self._db.connect() as conn:
            count, latest = (await conn.execute(query)).one()
        return int(count), latest

    async def is_known(self, subject: str, client: str, since: datetime) -> bool:
        query = sa.select(kc.c.client).where(
            kc.c.subject == subject, kc.c.client == client, kc.c.last_success > since
        )
        async with self._db.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def remember(self, subject: str, client: str, at: datetime) -> None:
        dialect_insert = sqlite_insert if self._db.is_sqlite else pg_insert
        statement = dialect_insert(kc).values(subject=subject, client=client, last_success=at)
        statement = statement.on_conflict_do_update(
            index_elements=[kc.c.subject, kc.c.client], set_={"last_success": at}
        )
        async with self._db.begin() as conn:
            await conn.execute(statement)

    async def prune(self, *, failures_before: datetime, clients_before: datetime) -> int:
        async with self._db.begin() as conn:
            one = await conn.execute(af.delete().where(af.c.at < failures_before))
            two = await conn.execute(kc.delete().where(kc.c.last_success < clients_before))
        return int(one.rowcount) + int(two.rowcount)
