"""Helpers of the issue-11 tests (mail, one-time tokens, TOTP, passkeys, throttle): a
migrated database on the test's backend, users made directly in it, a moving clock,
and a way to fire the same call many times at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from jwtauth.server.audit import Auditor
from jwtauth.server.mail.address import fold_email
from jwtauth.server.store import Database, create_database
from jwtauth.server.store.audit import AuditStore
from jwtauth.server.store.tables import audit_events, users

from conftest import Backend

T = TypeVar("T")
KEK = b"k" * 16 + b"e" * 16  # a test key-encryption key (32 bytes)


class Now:
    """An injectable datetime clock."""

    def __init__(self) -> None:
        self.value = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


@asynccontextmanager
async def open_db(backend: Backend) -> AsyncIterator[Database]:
    """The test's database, migrated; disposed afterwards. Opening it twice gives two
    independent engines on one database: two "instances"."""
    db = create_database(
        backend.overrides["database_url"], schema=backend.overrides.get("database_schema")
    )
    await db.upgrade()
    try:
        yield db
    finally:
        await db.dispose()


async def add_user(
    db: Database, username: str = "alice", *, email: str | None = None,
    verified: bool = False, now: datetime | None = None,
) -> str:
    user_id = str(uuid.uuid4())
    moment = now or datetime.now(UTC)
    async with db.begin() as conn:
        await conn.execute(users.insert().values(
            id=user_id, username=username, email=email,
            email_folded=fold_email(email) if email else None, email_verified=verified,
            password_hash="x", roles=["user"], created_at=moment, updated_at=moment,
        ))
    return user_id


def auditor_for(db: Database, now: Callable[[], datetime]) -> Auditor:
    return Auditor(AuditStore(db), now=now)


async def audit_names(db: Database) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(audit_events.c.event).order_by(audit_events.c.id))
        return [r.event for r in rows]


async def audit_rows(db: Database) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(audit_events.select().order_by(audit_events.c.id))
        return [dict(r._mapping) for r in rows]


async def at_once(n: int, call: Callable[[], Awaitable[T]]) -> list[T | BaseException]:
    """``call()`` n times concurrently; exceptions are returned, not raised."""
    return await asyncio.gather(*(call() for _ in range(n)), return_exceptions=True)


async def queued_tokens(db: Database) -> list[str]:
    """The tokens of the mails still in the outbox, opened with the test KEK (what the
    mail would carry; test_mail_outbox.py follows real mails)."""
    from jwtauth.server.sealing import Sealer, SealPurpose
    from jwtauth.server.store.account_tables import mail_outbox as mo

    sealer = Sealer(KEK, SealPurpose.MAIL_TOKEN)
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(mo.c.kind, mo.c.recipient, mo.c.secret_sealed)
            .where(mo.c.secret_sealed.isnot(None)).order_by(mo.c.id))
        return [sealer.open(f"{r.kind}:{r.recipient}", r.secret_sealed) for r in rows]
