"""The one composition root: every part of the server is built here, from ``Settings``.

``Server`` builds each part the first time it is asked for, from the parts it needs.
``web/app.py:create_app`` asks for all of them and starts the server; a command-line
run (``Server.for_command``) asks only for what its command uses, so ``jwtauth keys
list`` opens the database and reads the key store, and builds no password hasher (a
thread pool and an argon2 hash) and no Redis client. The hasher and Redis modules are
imported where they are built, for the same reason. The services take their parts;
none of them builds one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from ..keys import Keyring
from ..revocation import RevocationList
from ..tokens import ClaimsPolicy
from ..verifier import Verifier
from .accounts.admin import UserAdmin
from .audit import Auditor
from .background import Background, load_revocations
from .config import Settings
from .keyservice import KeyService, key_cipher
from .ratelimit import EventLimiter, LoginLimiter, LoginPolicy, MemoryLoginLimiter, WindowLimiter
from .service import AuthService
from .sessions import Revoker, Rotator, SessionPolicy, SessionService, remember_in
from .sessions.revocation import RevocationListener
from .store import Database, create_database
from .store.audit import AuditStore
from .store.keys import KeyStore
from .store.meta import MetaStore
from .store.revocations import RevocationLog
from .store.sessions import SessionStore
from .store.users import UserStore
from .tokens import TokenIssuer

if TYPE_CHECKING:
    from .accounts.credentials import Credentials
    from .accounts.registration import Registration
    from .eventbus import EventBus
    from .passwords import PasswordHasher

log = logging.getLogger("jwtauth")


class Server:
    """The parts of one server process, each built on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        limiter: LoginLimiter | None = None,
        serving: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._limiter = limiter
        self._serving = serving

    @classmethod
    def for_command(cls, settings: Settings) -> Server:
        """For one command-line run: it never serves, so it keeps no revocations in
        memory; it only tells the servers (the log, and Redis when configured)."""
        return cls(settings, serving=False)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- storage ---------------------------------------------------------------------

    @cached_property
    def db(self) -> Database:
        return create_database(self.settings.database_url, schema=self.settings.database_schema)

    @cached_property
    def key_store(self) -> KeyStore:
        # The cipher comes with the database: on SQLite it is a key file beside it.
        return KeyStore(self.db, key_cipher(self.settings, self.db))

    @cached_property
    def users(self) -> UserStore:
        return UserStore(self.db)

    @cached_property
    def revocation_log(self) -> RevocationLog:
        return RevocationLog(self.db)

    @cached_property
    def audit_store(self) -> AuditStore:
        return AuditStore(self.db)

    @cached_property
    def auditor(self) -> Auditor:
        return Auditor(self.audit_store, now=self.now)

    # -- tokens, keys, revocations ---------------------------------------------------

    @cached_property
    def keyring(self) -> Keyring:
        return Keyring()

    @cached_property
    def revocations(self) -> RevocationList:
        return RevocationList(self.clock, max_staleness=self.settings.revocation_staleness_bound)

    def _policy(self, issuer: str) -> ClaimsPolicy:
        return ClaimsPolicy(issuer, self.settings.audience, self.settings.clock_skew)

    @cached_property
    def verifier(self) -> Verifier:
        settings = self.settings
        return Verifier(
            self.keyring, issuer=settings.effective_issuer, audience=settings.audience,
            leeway=settings.clock_skew, revocations=self.revocations, clock=self.clock,
        )

    @cached_property
    def issuer(self) -> TokenIssuer:
        policy = self._policy(self.settings.effective_issuer)
        return TokenIssuer(self.keyring, policy, self.settings.access_ttl, self.clock)

    @cached_property
    def events(self) -> EventBus | None:
        """Redis, when JWTAUTH_REDIS_URL is set: events between the server processes."""
        if not self.settings.redis_url:
            return None
        from .eventbus import EventBus

        return EventBus(self.settings)

    @cached_property
    def keys(self) -> KeyService:
        return KeyService(
            self.settings, self.key_store, self.keyring, self.revocation_log, self.auditor,
            now=self.now, news=self.events,
        )

    @cached_property
    def revoker(self) -> Revoker:
        listeners: list[RevocationListener] = []
        if self._serving:
            listeners.append(remember_in(self.revocations))
        if self.events is not None:
            listeners.append(self.events.publish_revocations)
        return Revoker(
            self.db, ttl=self.settings.revocation_ttl, clock=self.clock, auditor=self.auditor,
            listeners=listeners,
        )

    # -- accounts and sessions -------------------------------------------------------

    @cached_property
    def hasher(self) -> PasswordHasher:
        from .passwords import PasswordHasher

        settings = self.settings
        return PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism, threads=settings.hash_threads,
        )

    @cached_property
    def limiter(self) -> LoginLimiter:
        if self._limiter is not None:
            return self._limiter
        memory = MemoryLoginLimiter(LoginPolicy.from_settings(self.settings), clock=self.clock)
        if self.events is None:
            return memory
        from .ratelimit_redis import RedisLoginLimiter

        return RedisLoginLimiter.from_settings(
            self.events.redis, self.settings, fallback=memory, clock=self.clock
        )

    @cached_property
    def registrations(self) -> EventLimiter:
        settings = self.settings
        if self.events is None:
            return WindowLimiter(
                limit=settings.register_max_per_address, window=settings.register_window,
                clock=self.clock,
            )
        from .ratelimit_redis import RedisWindowLimiter

        return RedisWindowLimiter.from_settings(self.events.redis, settings, clock=self.clock)

    @cached_property
    def registration(self) -> Registration:
        from .accounts.registration import Registration

        # A command-line run is the operator: not limited.
        limiter = self.registrations if self._serving else None
        return Registration(self.users, self.hasher, self.auditor, limiter=limiter, now=self.now)

    @cached_property
    def admin(self) -> UserAdmin:
        return UserAdmin(self.users, self.revoker, self.auditor, now=self.now)

    @cached_property
    def sessions(self) -> SessionService:
        settings = self.settings
        store = SessionStore(self.db)
        rotator = Rotator(
            store, self.revoker, ttl=settings.refresh_ttl, grace=settings.refresh_reuse_grace
        )
        policy = SessionPolicy(settings.refresh_ttl, settings.refresh_absolute_ttl)
        return SessionService(
            store, rotator, self.revoker, self.issuer, self.auditor, policy, now=self.now
        )

    @cached_property
    def credentials(self) -> Credentials:
        from .accounts.credentials import Credentials

        return Credentials(
            self.users, self.hasher, self.limiter, self.sessions, self.revoker, self.auditor,
            now=self.now,
        )

    @cached_property
    def service(self) -> AuthService:
        return AuthService(
            settings=self.settings, verifier=self.verifier, keyring=self.keyring,
            registration=self.registration, credentials=self.credentials, admin=self.admin,
            sessions=self.sessions, audit=self.audit_store, db=self.db,
        )

    @cached_property
    def background(self) -> Background:
        return Background(
            self.settings, revocation_log=self.revocation_log, revocations=self.revocations,
            keys=self.keys, audit=self.audit_store, clock=self.clock, health=self.db.health,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate, load keys and revocations, then run the background jobs."""
        if not self._serving:
            raise RuntimeError("a command-line Server does not serve")
        self.settings.validate_for_serving()
        await self.db.upgrade()
        if not self.keys.sealed and self.settings.algorithm != "HS256":
            # Allowed (a first try on PostgreSQL), but never silently: see SECURITY.md.
            log.warning(
                "JWTAUTH_KEY_ENCRYPTION_KEY is not set: private signing keys are stored "
                "unencrypted in the database, and a copy of it can mint tokens"
            )
        if self.settings.configured_issuer is None:
            recorded = await MetaStore(self.db).get_or_set(
                "issuer", self.settings.effective_issuer
            )
            # Sign and verify with the issuer the first server on this database chose.
            self.verifier.policy = self.issuer.policy = self._policy(recorded)
        await self.keys.reload_keys()
        if await self.keys.maintain_keys():
            await self.keys.reload_keys()
        await load_revocations(self.revocation_log, self.revocations, self.now())
        if self.events is not None:
            self.events.start(
                self.revocation_log, self.revocations, now=self.now,
                wake=self.background.wake.set,
            )
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()
        await self.close()

    async def close(self) -> None:
        """Release what was built: send queued events, stop the hashing threads, close
        the database. (A command-line run ends with this.)"""
        built = self.__dict__
        if "events" in built and self.events is not None:
            if self._serving:
                await self.events.stop()
            else:
                await self.events.close()  # revocations and key changes, at once
        if "hasher" in built:
            self.hasher.close()
        if "db" in built:
            await self.db.dispose()
