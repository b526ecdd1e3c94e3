"""Engine creation for SQLite (aiosqlite) and PostgreSQL (asyncpg), and migrations."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ...errors import ConfigError
from ..files import require_private, sqlite_files
from ..logs import protect_secret_loggers
from .outage import STORE_ERRORS, StoreHealth

MIGRATIONS = Path(__file__).parent / "migrations"


class MigrationBlocked(ConfigError):
    """A migration found data it cannot convert without the operator's decision; it
    changed nothing (``jwtauth db upgrade`` exits with status 2)."""


def async_url(url: str) -> URL:
    """The user's SQLAlchemy URL with the async driver picked for them."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"JWTAUTH_DATABASE_URL is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")


class Database:
    """One engine and what the rest of the package needs to know about it."""

    def __init__(
        self, engine: AsyncEngine, *, sqlite_path: Path | None, schema: str | None = None
    ) -> None:
        self.engine = engine
        self.sqlite_path = sqlite_path
        self.schema = schema
        self.health = StoreHealth()  # outages: logged once each way (store/outage.py)
        self.health.watch(engine)
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def upgrade(self, revision: str = "head") -> None:
        """Apply every Alembic migration up to ``revision`` not yet applied (idempotent).
        ``MigrationBlocked`` if one finds data it cannot migrate; nothing changes then."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several instances starting together: one migrates, the others wait.
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7305198241)"))
                if self.schema:  # validated as an identifier by Settings
                    await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            await conn.run_sync(_run_alembic_upgrade, revision)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except STORE_ERRORS as exc:
            self.health.failed(exc)
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()

    def connect(self) -> Any:
        return self.engine.connect()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (committed on exit, rolled back on error)."""
        async with self.serialized(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def serialized(self) -> AsyncIterator[None]:
        """One write transaction at a time per process, on SQLite only.

        SQLite allows one writer; a second one waits in SQLite's busy handler, which
        sleeps in steps of up to 100 ms. Queuing writers here instead hands the lock on
        the moment it is free (measured: bench/refresh.py). Not reentrant: code inside
        must not open another write transaction. PostgreSQL locks rows, not the file.
        """
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield


def _run_alembic_upgrade(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _touch_private(path: Path) -> None:
    # The database holds password hashes and (sealed) keys: create it owner-only.
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def create_database(url: str, *, schema: str | None = None, echo: bool = False) -> Database:
    # Statement parameters (password hashes, sealed keys) never reach a log line or an
    # exception message, whatever level the application sets (jwtauth.logs).
    protect_secret_loggers()
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        db_name = target.database
        if not db_name or db_name == ":memory:":
            raise ConfigError("an in-memory SQLite database cannot be shared; name a file")
        path = Path(db_name).resolve()
        _touch_private(path)
        for existing in sqlite_files(path):  # whichever entry point opens it
            require_private(existing)
        engine = create_async_engine(
            target.set(database=str(path)), echo=echo, hide_parameters=True,
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return Database(engine, sqlite_path=path)

    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    engine = create_async_engine(
        target, echo=echo, hide_parameters=True, pool_size=10, max_overflow=20,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    return Database(engine, sqlite_path=None, schema=schema)


__all__ = ["AsyncConnection", "Database", "MigrationBlocked", "async_url", "create_database"]
