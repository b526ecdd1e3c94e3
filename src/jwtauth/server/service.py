"""AuthService: every account and session operation, with no web types.

The web layer turns HTTP into calls here and ``AuthError``s back into HTTP. Everything
this module needs arrives through the constructor, so two differently configured
services can live in one process (the tests build one per test).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..claims import Claims
from ..errors import InvalidCredentials, InvalidGrant, NotFound, WrongPassword
from ..keys import Keyring
from ..revocation import RevocationKind, RevocationList
from ..tokens import ClaimsPolicy
from ..verifier import Verifier
from .attempts import admit
from .audit import AuditEventName as Audit
from .audit import Auditor
from .config import Settings
from .keyservice import KeyService
from .passwords import PasswordHasher, validate_new_password
from .ratelimit import EventLimiter, LoginLimiter, LoginPolicy, MemoryLoginLimiter, WindowLimiter
from .sessions import new_refresh_token
from .store import Database
from .store.audit import AuditStore
from .store.meta import MetaStore
from .store.outage import STORE_ERRORS
from .store.revocations import KEYS_CHANGED, RevocationLog
from .store.sessions import Outcome, SessionRecord, SessionStore
from .store.users import UserRecord, UserStore, delete_user
from .tokens import TokenIssuer

if TYPE_CHECKING:
    from .eventbus import EventBus

log = logging.getLogger("jwtauth")

DEFAULT_ROLES = ["user"]
_FOLLOW_OVERLAP = 5.0  # seconds re-read on each poll, for transactions that commit late
_MAINTENANCE_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    address: str
    user_agent: str | None


class AuthService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.keyring = Keyring()
        self.revocations = RevocationList(
            clock, max_staleness=settings.revocation_staleness_bound
        )
        self.verifier = Verifier(
            self.keyring,
            issuer=settings.effective_issuer,
            audience=settings.audience,
            leeway=settings.clock_skew,
            revocations=self.revocations,
            clock=clock,
        )
        policy = ClaimsPolicy(settings.effective_issuer, settings.audience, settings.clock_skew)
        self.issuer = TokenIssuer(self.keyring, policy, settings.access_ttl, clock)
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            threads=settings.hash_threads,
        )
        self.registrations: EventLimiter = WindowLimiter(
            limit=settings.register_max_per_address, window=settings.register_window,
            clock=clock,
        )
        memory_limiter = MemoryLoginLimiter(LoginPolicy.from_settings(settings), clock=clock)
        self.limiter: LoginLimiter = limiter or memory_limiter
        # Several instances (JWTAUTH_REDIS_URL): eventbus.py, ratelimit_redis.py.
        self.events: EventBus | None = None
        self._poll_now = asyncio.Event()
        if settings.redis_url:
            from .eventbus import EventBus

            self.events = EventBus(settings, self.revocations)
            if limiter is None:
                self.limiter = self.events.login_limiter(settings, memory_limiter, clock)
            self.registrations = self.events.registration_limiter(settings, clock)
        self.meta = MetaStore(db)
        self.users = UserStore(db)
        self.sessions = SessionStore(db, revocation_ttl=settings.revocation_ttl)
        self.revocation_log = RevocationLog(db)
        self.audit_store = AuditStore(db)
        self.audit = Auditor(self.audit_store, now=self.now)
        self.keys = KeyService(
            settings, db, self.keyring, self.revocation_log, self.audit, now=self.now,
            events=self.events,
        )
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------

    @property
    def issuer_url(self) -> str:
        return self.verifier.policy.issuer

    def use_issuer(self, issuer: str) -> None:
        """Sign and verify with ``issuer`` (set once, at start)."""
        policy = ClaimsPolicy(issuer, self.settings.audience, self.settings.clock_skew)
        self.verifier.policy = policy
        self.issuer.policy = policy

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def start(self) -> None:
        """Load keys and revocations, then follow the revocation log in the background."""
        self.settings.validate_for_serving()
        if not self.keys.store.sealed and self.settings.algorithm != "HS256":
            # Allowed (a first try on PostgreSQL), but never silently: see SECURITY.md.
            log.warning(
                "JWTAUTH_KEY_ENCRYPTION_KEY is not set: private signing keys are stored "
                "unencrypted in the database, and a copy of it can mint tokens"
            )
        if self.settings.configured_issuer is None:
            self.use_issuer(await self.meta.get_or_set("issuer", self.settings.effective_issuer))
        await self.keys.reload_keys()
        if await self.keys.maintain_keys():
            await self.keys.reload_keys()
        loaded_at = time.monotonic()
        for entry in await self.revocation_log.active(self.now()):
            if entry.kind != KEYS_CHANGED:
                self.revocations.add(
                    RevocationKind(entry.kind), entry.value, entry.expires_at.timestamp()
                )
        self.revocations.confirm(loaded_at)
        if self.events is not None:
            self.events.start(self.revocation_log, now=self.now, wake=self._poll_now.set)
        self._tasks.append(asyncio.create_task(self._follow_revocations(self.clock())))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.events is not None:
            await self.events.stop()
        self.hasher.close()

    async def _follow_revocations(self, since: float) -> None:
        """Replay revocations (and key changes) written by other processes into this
        one's memory, and keep the key lifecycle moving."""
        interval = self.settings.revocation_poll_interval
        next_maintenance = 0.0
        handled_key_news: set[int] = set()  # each entry is re-read during the overlap
        while True:
            # Sooner when Redis reports a key change or comes back after a break.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), interval)
            self._poll_now.clear()
            started = self.clock()
            fresh_at = time.monotonic()
            try:
                moment = datetime.fromtimestamp(since - _FOLLOW_OVERLAP, UTC)
                key_news: set[int] = set()
                for entry in await self.revocation_log.since(moment):
                    if entry.kind == KEYS_CHANGED:
                        key_news.add(entry.id)
                        continue
                    self.revocations.add(
                        RevocationKind(entry.kind), entry.value, entry.expires_at.timestamp()
                    )
                self.revocations.confirm(fresh_at)
                since = started
                # Any announcement not yet handled, even of a kid already held: a standby
                # key promoted or a key retired elsewhere changes what this process signs.
                keys_changed = bool(key_news - handled_key_news)
                if started >= next_maintenance:
                    next_maintenance = started + _MAINTENANCE_INTERVAL
                    await self.revocation_log.purge(self.now())
                    await self.prune_audit()
                    keys_changed = await self.keys.maintain_keys() or keys_changed
                if keys_changed:
                    await self.keys.reload_keys()
                handled_key_news = key_news
            except STORE_ERRORS as exc:
                self.db.health.failed(exc)  # logged once per outage, not every poll

    async def prune_audit(self) -> int:
        """Apply JWTAUTH_AUDIT_RETENTION (run by the maintenance loop). 0 keeps all."""
        retention = self.settings.audit_retention
        if not retention:
            return 0
        deleted = await self.audit_store.prune(self.now() - timedelta(seconds=retention))
        if deleted:
            log.info("audit: deleted %d events older than %d s", deleted, retention)
        return deleted

    def _revoke_locally(self, kind: RevocationKind, values: list[str]) -> None:
        """Called after the revocation committed to the database log."""
        until = self.clock() + self.settings.revocation_ttl
        for value in values:
            self.revocations.add(kind, value, until)
        if self.events is not None:
            self.events.publish_revocations(kind, values, until)

    # -- accounts --------------------------------------------------------------------

    async def register(
        self, username: str, password: str, *, email: str | None = None,
        roles: list[str] | None = None, client: ClientInfo | None = None,
    ) -> UserRecord:
        if client is not None:  # the operator's CLI is not limited
            await self.registrations.hit(client.address)
        validate_new_password(password, username=username)
        password_hash = await self.hasher.hash(password)
        user = await self.users.create(
            username=username, password_hash=password_hash,
            roles=list(roles or DEFAULT_ROLES), email=email, now=self.now(),
        )
        await self.audit.record(
            Audit.USER_REGISTERED, user_id=user.id, username=user.username, client=client
        )
        return user

    async def login(self, username: str, password: str, client: ClientInfo) -> TokenPair:
        attempt = await admit(self.limiter, self.audit, username, client)
        user = await self.users.by_username(username)
        ok, new_hash = await self.hasher.verify(user.password_hash if user else None, password)
        if not ok or user is None:
            # The attempted name (never the password); the same write whether or not
            # the account exists, so the audit adds no timing difference.
            await self.audit.record(
                Audit.LOGIN_FAILED, user_id=user.id if user else None, username=username,
                client=client,
            )
            raise InvalidCredentials()
        await self.limiter.succeeded(attempt)
        if new_hash is not None:
            await self.users.set_password_hash(user.id, new_hash, self.now())
        token = new_refresh_token()
        session_id = await self.sessions.create(
            user_id=user.id, token=token, now=self.now(), ttl=self.settings.refresh_ttl,
            absolute_ttl=self.settings.refresh_absolute_ttl, user_agent=client.user_agent,
            client_ip=client.address,
        )
        await self.audit.record(
            Audit.LOGIN_SUCCEEDED, user_id=user.id, username=user.username,
            session_id=session_id, client=client,
        )
        return self._pair(user, session_id, token, self.settings.refresh_ttl)

    def _pair(self, user: UserRecord, session_id: str, token: str, refresh_in: int) -> TokenPair:
        access = self.issuer.issue(
            sub=user.id, sid=session_id, roles=user.roles, username=user.username
        )
        return TokenPair(access, self.settings.access_ttl, token, refresh_in)

    async def refresh(self, presented: str, client: ClientInfo | None = None) -> TokenPair:
        if not presented or len(presented) > 256:
            raise InvalidGrant("malformed")
        now = self.now()
        # Written by the store in the transaction that revokes the family, if reuse.
        reuse = self.audit.event(
            Audit.REFRESH_TOKEN_REUSED, client=client, detail={"family_revoked": True}
        )
        result = await self.sessions.rotate(
            presented, new_token=new_refresh_token(), now=now,
            ttl=self.settings.refresh_ttl, grace=self.settings.refresh_reuse_grace, audit=reuse,
        )
        if result.outcome is Outcome.REUSED:
            assert result.session_id is not None
            self._revoke_locally(RevocationKind.SESSION, [result.session_id])
            self.audit.emit(reuse.about(
                user_id=result.user_id, username=result.username, session_id=result.session_id
            ))
            raise InvalidGrant("reused")
        if result.outcome is Outcome.INVALID:
            raise InvalidGrant("invalid")
        assert result.user_id and result.session_id and result.token and result.expires_at
        refresh_in = max(1, int((result.expires_at - now).total_seconds()))
        access = self.issuer.issue(
            sub=result.user_id, sid=result.session_id, roles=result.roles or [],
            username=result.username or "",
        )
        return TokenPair(access, self.settings.access_ttl, result.token, refresh_in)

    async def logout(
        self, claims: Claims | None, refresh_token: str | None,
        client: ClientInfo | None = None,
    ) -> None:
        """End the session of the access token and/or of the refresh token."""
        targets: list[tuple[str, str]] = []
        if claims is not None:
            targets.append((claims.sid, claims.sub))
        if refresh_token:
            found = await self.sessions.session_of_token(refresh_token)
            if found is not None and (claims is None or found[1] == claims.sub):
                targets.append(found)
        if not targets:
            raise InvalidGrant("nothing to log out")
        for session_id, user_id in dict.fromkeys(targets):
            event = self.audit.event(
                Audit.LOGOUT, user_id=user_id, session_id=session_id, client=client,
                username=claims.username if claims is not None and claims.sub == user_id else None,
            )
            if await self.sessions.revoke(session_id, self.now(), user_id=user_id, audit=event):
                self.audit.emit(event)
            self._revoke_locally(RevocationKind.SESSION, [session_id])

    async def logout_all(self, claims: Claims, client: ClientInfo | None = None) -> None:
        event = self.audit.event(
            Audit.LOGOUT_ALL, user_id=claims.sub, username=claims.username,
            session_id=claims.sid, client=client,
        )
        ended = await self.sessions.revoke_all(claims.sub, self.now(), audit=event)
        self._revoke_locally(RevocationKind.SESSION, [*ended, claims.sid])
        self.audit.emit(event)

    async def list_sessions(self, claims: Claims) -> list[SessionRecord]:
        return await self.sessions.live_for_user(claims.sub, self.now())

    async def end_session(
        self, claims: Claims, session_id: str, client: ClientInfo | None = None
    ) -> None:
        event = self.audit.event(
            Audit.SESSION_ENDED, user_id=claims.sub, username=claims.username,
            session_id=session_id, client=client, detail={"by_session": claims.sid},
        )
        if not await self.sessions.revoke(
            session_id, self.now(), user_id=claims.sub, audit=event
        ):
            raise NotFound("No such session.")
        self._revoke_locally(RevocationKind.SESSION, [session_id])
        self.audit.emit(event)

    async def change_password(
        self, claims: Claims, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        user = await self.users.by_id(claims.sub)
        if user is None:
            raise InvalidCredentials()
        # The current password counts in the login limits: no side door for guessing.
        attempt = None if client is None else await admit(
            self.limiter, self.audit, user.username, client, user_id=user.id,
            via="password_change",
        )
        ok, _ = await self.hasher.verify(user.password_hash, current)
        if not ok:
            await self.audit.record(
                Audit.PASSWORD_CHANGE_FAILED, user_id=user.id, username=user.username,
                session_id=claims.sid, client=client,
            )
            raise WrongPassword()
        if attempt is not None:
            await self.limiter.succeeded(attempt)
        validate_new_password(new, username=user.username)
        await self.users.set_password_hash(user.id, await self.hasher.hash(new), self.now())
        event = self.audit.event(
            Audit.PASSWORD_CHANGED, user_id=user.id, username=user.username,
            session_id=claims.sid, client=client,
        )
        ended = await self.sessions.revoke_all(user.id, self.now(), keep=claims.sid, audit=event)
        self._revoke_locally(RevocationKind.SESSION, ended)
        self.audit.emit(event)

    # -- administration --------------------------------------------------------------

    async def list_users(self, *, limit: int, offset: int) -> list[UserRecord]:
        return await self.users.page(limit=limit, offset=offset)

    async def set_roles(
        self, user_id: str, roles: list[str], *, actor_id: str | None = None,
        client: ClientInfo | None = None,
    ) -> UserRecord:
        """``actor_id``: the admin acting (None from the command line)."""
        before = await self.users.by_id(user_id)
        if before is None:
            raise NotFound("No such user.")
        new_roles = list(dict.fromkeys(roles))
        event = self.audit.event(
            Audit.ROLES_CHANGED, user_id=user_id, username=before.username, actor_id=actor_id,
            client=client, detail={"old_roles": before.roles, "new_roles": new_roles},
        )
        user = await self.users.set_roles(user_id, new_roles, self.now(), audit=event)
        if user is None:
            raise NotFound("No such user.")
        self.audit.emit(event)
        return user

    async def delete_user(
        self, user_id: str, *, actor_id: str | None = None, client: ClientInfo | None = None
    ) -> None:
        """``actor_id``: the admin acting (None from the command line)."""
        found = await self.users.by_id(user_id)
        if found is None:
            raise NotFound("No such user.")
        event = self.audit.event(
            Audit.USER_DELETED, user_id=user_id, username=found.username, actor_id=actor_id,
            client=client,
        )
        if not await delete_user(
            self.db, user_id, self.now(), revocation_ttl=self.settings.revocation_ttl,
            audit=event,
        ):
            raise NotFound("No such user.")
        self._revoke_locally(RevocationKind.USER, [user_id])
        self.audit.emit(event)

