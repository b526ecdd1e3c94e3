"""The server's side of the Redis events (events.py): publish this process's revocations
and key changes once committed, follow everyone's, and keep the stream holding every live
revocation of the database log (copied in at first contact and after Redis lost its data).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ..events import (
    BATCH,
    RETRY_FIRST,
    RETRY_MAX,
    Event,
    EventFollower,
    StreamKeys,
    Worker,
    connect,
)
from ..revocation import RevocationKind, RevocationList
from .store.outage import STORE_ERRORS

if TYPE_CHECKING:
    from .config import Settings
    from .store.revocations import RevocationLog

log = logging.getLogger("jwtauth.events")

_KEYS_EVENT_TTL = 300
_MAX_PENDING = 10_000
_RETENTION_MARGIN = 60  # seconds, for clock differences between servers and Redis


async def add_events(redis: Redis, keys: StreamKeys, events: list[Event], retention: int) -> None:
    """Append ``events`` and trim entries older than ``retention`` seconds."""
    # Stream ids are Redis's clock in ms; ours may differ a little, hence the margin.
    oldest = int((time.time() - retention - _RETENTION_MARGIN) * 1000)
    for start in range(0, len(events), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for event in events[start : start + BATCH]:
                # Exact trimming: few entries go at a time, and the stream stays as documented.
                pipe.xadd(keys.stream, event.fields(), minid=oldest, approximate=False)
            await pipe.execute()


async def mark_complete(redis: Redis, keys: StreamKeys) -> None:
    """Put the completeness marker on the stream (events.py): a consumer group, so that
    it goes wherever the stream goes. Idempotent: another server may have just made it."""
    try:
        await redis.xgroup_create(keys.stream, keys.group, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class EventPublisher(Worker):
    """Appends events from a queue, so the request that caused them never waits on
    Redis. While Redis is away they wait here (bounded); the database log carries them
    to the other server processes meanwhile."""

    def __init__(self, redis: Redis, keys: StreamKeys, *, retention: int) -> None:
        super().__init__(redis)
        self._keys = keys
        self._retention = retention
        self._pending: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._failing = False

    def publish(self, events: Iterable[Event]) -> None:
        self._pending.extend(events)
        while len(self._pending) > _MAX_PENDING:
            self._pending.popleft()  # the oldest: the database log still has it
        self._wake.set()

    async def halt(self, task: asyncio.Task[None]) -> None:
        self._wake.set()
        await super().halt(task)

    async def flush(self) -> None:
        """Send what is queued now, once (a command-line run has no publishing task)."""
        events = list(self._pending)
        self._pending.clear()
        try:
            await add_events(self._redis, self._keys, events, self._retention)
        except (RedisError, OSError) as exc:
            log.warning("cannot publish events to Redis: %s; the servers will read them "
                        "from the database log", type(exc).__name__)

    async def run(self) -> None:
        delay = RETRY_FIRST
        while not self._stopping.is_set():
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not self._stopping.is_set():
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                try:
                    await add_events(self._redis, self._keys, batch, self._retention)
                except (RedisError, OSError) as exc:
                    self._pending.extendleft(reversed(batch))
                    if not self._failing:
                        log.warning("cannot publish events to Redis: %s", type(exc).__name__)
                    self._failing = True
                    await self._pause(delay)
                    delay = min(2 * delay, RETRY_MAX)
                    continue
                if self._failing:
                    log.info("publishing events to Redis again")
                self._failing = False
                delay = RETRY_FIRST


class EventBus:
    """The server's side: publish this process's revocations and key changes, follow
    everyone's, and keep the stream holding every live revocation of the database.

    Built by the wiring when JWTAUTH_REDIS_URL is set. No connection is made before the
    first event is published or ``start`` is called; a command-line run only publishes
    (``close`` sends what it queued), and only the server follows."""

    def __init__(self, settings: Settings) -> None:
        if not settings.redis_url:
            raise ValueError("EventBus needs JWTAUTH_REDIS_URL")
        self._url = settings.redis_url
        self.keys = StreamKeys.for_prefix(settings.redis_prefix)
        self.redis = connect(settings.redis_url, name="jwtauth")
        self._follow_redis: Redis | None = None
        self._retention = settings.revocation_ttl
        self.publisher = EventPublisher(self.redis, self.keys, retention=self._retention)
        self.follower: EventFollower | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(
        self, revocation_log: RevocationLog, revocations: RevocationList, *,
        now: Callable[[], datetime], wake: Callable[[], None],
    ) -> None:
        """Follow the stream into ``revocations``; ``wake`` makes the process read the
        database log at once (on a key change, and whenever Redis comes back)."""

        async def seed(redis: Redis) -> bool:
            try:
                records = await revocation_log.active(now())
            except STORE_ERRORS as exc:  # asyncpg's own too: they would end the follower
                log.warning("cannot refill Redis, no database: %s", type(exc).__name__)
                return False
            events = [
                Event(r.kind, r.value, r.expires_at.timestamp())
                for r in records
                if r.kind is not RevocationKind.KEYS_CHANGED
            ]
            await add_events(redis, self.keys, events, self._retention)
            # Made only after every event is in: a follower that sees it is complete.
            await mark_complete(redis, self.keys)
            log.info("copied %d live revocation(s) into Redis", len(events))
            return True

        self._follow_redis = connect(self._url, name="jwtauth-follow", follower=True)
        self.follower = EventFollower(
            self._follow_redis, self.keys, revocations,
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
        self.publisher.publish(
            [Event(RevocationKind.KEYS_CHANGED, kid, time.time() + _KEYS_EVENT_TTL)]
        )

    async def close(self) -> None:
        """For a process that never started the bus (the command line): send what it
        queued and close the connection."""
        await self.publisher.flush()
        await self.redis.aclose()

    async def stop(self) -> None:
        if self._tasks:
            publishing, following = self._tasks
            assert self.follower is not None
            await self.follower.halt(following)
            await self.publisher.halt(publishing)
        self._tasks.clear()
        await self.redis.aclose()
        if self._follow_redis is not None:
            await self._follow_redis.aclose()
