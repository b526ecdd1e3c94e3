"""Migration 0006 (issue 11) on SQLite and PostgreSQL: the new users columns (with the
folded email of existing rows back-filled), the new tables, a clean downgrade, and the
account-state statements phase 2's unit of work runs."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from jwtauth.server.store import Database
from jwtauth.server.store.account_state import is_disabled, mark_disabled, mark_enabled, set_email
from jwtauth.server.store.account_tables import ACCOUNT_TABLES
from jwtauth.server.store.tables import users

from accounts_kit import add_user, open_db
from conftest import Backend


async def _alembic(db: Database, target: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from jwtauth.server.store.database import MIGRATIONS

    def run(connection: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def columns(db: Database, table: str) -> set[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda c: {col["name"] for col in sa.inspect(c).get_columns(table)})


async def test_upgrade_backfills_and_downgrade_is_clean(backend: Backend) -> None:
    async with open_db(backend) as db:
        await _alembic(db, "0005", down=True)
        assert "email_folded" not in await columns(db, "users")
        now = datetime.now(UTC)
        async with db.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO users (id, username, email, password_hash, roles, created_at, "
                "updated_at) VALUES ('u1', 'alice', ' Alice@Example.ORG', 'x', '[]', :t, :t)"
            ), {"t": now.replace(tzinfo=None)})
        await _alembic(db, "head")
        assert {"email_folded", "email_verified", "disabled_at"} <= await columns(db, "users")
        async with db.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == "u1"))).one()
        assert (row.email_folded, row.email_verified, row.disabled_at) == (
            "alice@example.org", False, None)
        for table in ACCOUNT_TABLES:
            assert await columns(db, table.name) == {c.name for c in table.columns}
        await _alembic(db, "0005", down=True)
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert not names & {t.name for t in ACCOUNT_TABLES}


async def test_disable_enable_and_a_new_email(backend: Backend) -> None:
    now = datetime.now(UTC)
    async with open_db(backend) as db:
        user_id = await add_user(db, email="a@example.org", verified=True)
        async with db.begin() as conn:
            assert await mark_disabled(conn, user_id, now)
            assert not await mark_disabled(conn, user_id, now)  # already
            assert await is_disabled(conn, user_id)
            assert await mark_enabled(conn, user_id, now)
            assert not await mark_enabled(conn, user_id, now)
            assert not await is_disabled(conn, user_id)
            assert not await mark_disabled(conn, "no-such-user", now)
            await set_email(conn, user_id, "B@Example.org", now)
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).one()
        assert (row.email, row.email_folded, row.email_verified) == (
            "B@Example.org", "b@example.org", False)
