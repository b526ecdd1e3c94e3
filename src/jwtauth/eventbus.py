"""The server's side of the Redis events (events.py): publish this process's revocations
and key changes once committed, follow everyone's, and keep the stream holding every live
revocation of the database log (copied in at first contact and after Redis lost its data).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from redis.asyncio import Redis

from .events import (
    KEYS,
    Event,
    EventFollower,
    EventPublisher,
    StreamKeys,
    add_events,
    connect,
)
from .revocation import RevocationKind, RevocationList

if TYPE_CHECKING:
    from .config import Settings
    from .ratelimit import LoginLimiter
    from .ratelimit_redis import RedisLoginLimiter, RedisWindowLimiter
    from .store.revocations import RevocationLog

log = logging.getLogger("jwtauth.events")

_KEYS_EVENT_TTL = 300


class EventBus:
    """The server's side: publish this process's revocations and key changes, follow
    everyone's, and keep the stream holding every live revocation of the database."""

    def __init__(self, settings: Settings, revocations: RevocationList) -> None:
        if not settings.redis_url:
            raise ValueError("EventBus needs JWTAUTH_REDIS_URL")
        self.keys = StreamKeys.for_prefix(settings.redis_prefix)
        self.redis = connect(settings.redis_url, name="jwtauth")
        self._follow_redis = connect(settings.redis_url, name="jwtauth-follow", follower=True)
        self._retention = settings.revocation_ttl
        self._revocations = revocations
        self.publisher = EventPublisher(self.redis, self.keys, retention=self._retention)
        self.follower: EventFollower | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def login_limiter(
        self, settings: Settings, fallback: LoginLimiter, clock: Callable[[], float]
    ) -> RedisLoginLimiter:
        from .ratelimit_redis import RedisLoginLimiter

        return RedisLoginLimiter.from_settings(
            self.redis, settings, fallback=fallback, clock=clock
        )

    def registration_limiter(
        self, settings: Settings, clock: Callable[[], float]
    ) -> RedisWindowLimiter:
        from .ratelimit_redis import RedisWindowLimiter

        return RedisWindowLimiter.from_settings(self.redis, settings, clock=clock)

    def start(
        self, revocation_log: RevocationLog, *, now: Callable[[], datetime],
        wake: Callable[[], None],
    ) -> None:
        """Follow the stream; ``wake`` makes the process read the database log at once
        (on a key change, and whenever Redis comes back)."""

        async def seed(redis: Redis) -> bool:
            try:
                records = await revocation_log.active(now())
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.warning("cannot refill Redis, no database: %s", type(exc).__name__)
                return False
            events = [
                Event(r.kind, r.value, r.expires_at.timestamp()) for r in records if r.kind != KEYS
            ]
            await add_events(redis, self.keys, events, self._retention)
            # Set only after every event is in: a follower that sees it is complete.
            await redis.set(self.keys.marker, str(int(time.time())))
            log.info("copied %d live revocation(s) into Redis", len(events))
            return True

        self.follower = EventFollower(
            self._follow_redis, self.keys, self._revocations,
            on_keys=wake, on_contact=wake, seed=seed,
        )
        self._tasks = [
            asyncio.create_task(self.publisher.run()),
            asyncio.create_task(self.follower.run()),
        ]

    def publish_revocations(
        self, kind: RevocationKind, values: Iterable[str], until: float
    ) -> None:
        """Called once the revocations have committed to the database."""
        self.publisher.publish(Event(kind.value, value, until) for value in values)

    def publish_keys(self, kid: str) -> None:
        self.publisher.publish([Event(KEYS, kid, time.time() + _KEYS_EVENT_TTL)])

    async def close(self) -> None:
        """For a process that never started the bus (the command line): send what it
        queued and close the connections."""
        await self.publisher.flush()
        await self.redis.aclose()
        await self._follow_redis.aclose()

    async def stop(self) -> None:
        if self._tasks:
            publishing, following = self._tasks
            assert self.follower is not None
            await self.follower.halt(following)
            await self.publisher.halt(publishing)
        self._tasks.clear()
        await self.redis.aclose()
        await self._follow_redis.aclose()
