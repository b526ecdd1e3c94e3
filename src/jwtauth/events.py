"""Revocation and key-change events between server processes, and for outside services,
through one Redis stream.

Servers write every revocation to the database log in the transaction of its cause (the
source of truth, which every process also polls) and, once committed, add it to the stream:
every process and every ``RevocationFeed`` knows it within milliseconds. Nothing here is on
the request path: a task drains the publishing queue, another fills a ``RevocationList``.

Why a stream and not pub/sub: a pub/sub message sent while a subscriber is disconnected
is lost, while a stream keeps its entries. A follower that reconnects reads on from the
last entry it saw, and one that starts reads every entry still relevant. Entries are
trimmed by age (``MINID``) once older than any token they can concern (access TTL + clock
skew, plus a margin), so what is trimmed no longer matters.

What Redis itself may lose (a restart without persistence, a FLUSHDB, a failover to a
replica without the stream, an eviction, a stray ``DEL``) is caught by a completeness
marker that lives inside the stream: a consumer group (``StreamKeys.group``, never read
through), which a server creates after copying the database's live revocations into the
stream. Whatever removes the stream removes the marker with it, and a stream made anew
by a later ``XADD`` has none. (A marker in a key of its own could outlive the stream it
vouched for, and a fresh follower would then trust an empty stream.) A follower vouches
for its list (``RevocationList.confirm``) only while the marker is on the stream it
reads; a server that finds it missing copies the log in again. The group's
``last-delivered-id`` (the stream's last entry when it was created) tells one filling
from the next: a follower that sees it change re-reads the new stream from its start
before vouching again, so entries re-added with ids below the last one it had read are
not skipped.

Not caught: a failover to a replica that lags, which holds an older but consistent
prefix of the stream and its marker. Entries published in that lag are in the database
log, which servers poll; a feed started after such a failover misses them until they
expire or a server refills. Redis persistence (``appendonly``) or ``WAIT`` narrows this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from .revocation import RevocationKind, RevocationList

log = logging.getLogger("jwtauth.events")

_KINDS = frozenset(RevocationKind)
_BLOCK_MS = 1000  # a follower hears from Redis at least once a second
_READ_TIMEOUT = 5.0  # above _BLOCK_MS: a silent network cut is noticed within this
BATCH = 500
RETRY_FIRST = 0.05
RETRY_MAX = 0.5  # a follower is back within half a second of Redis
_HALT_TIMEOUT = 2.0
MIN_STALENESS = 3.0  # a follower confirms once per _BLOCK_MS when all is well
_POOL_SIZE = 64
_POOL_WAIT = 2.0  # seconds a command may wait for a free connection


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # a RevocationKind: "sid", "sub" or "keys"
    value: str
    until: float  # epoch seconds: when the revocation stops mattering

    def fields(self) -> dict[FieldT, EncodableT]:
        return {"k": self.kind, "v": self.value, "u": f"{self.until:.3f}"}

    @classmethod
    def parse(cls, fields: dict[bytes, bytes]) -> Event | None:
        """The event of a stream entry, or None: anyone who can write to this Redis can
        add entries, so they are checked, not trusted."""
        try:
            kind = fields[b"k"].decode()
            value = fields[b"v"].decode()
            until = float(fields[b"u"])
        except (KeyError, UnicodeDecodeError, ValueError):
            return None
        if kind not in _KINDS or not value or len(value) > 256 or not math.isfinite(until):
            return None
        return cls(kind, value, until)


@dataclass(frozen=True, slots=True)
class StreamKeys:
    stream: str
    # The completeness marker: a consumer group on the stream, there while the stream
    # holds every live revocation (see the module docstring).
    group: str = "complete"

    @classmethod
    def for_prefix(cls, prefix: str) -> StreamKeys:
        return cls(prefix + "events")


async def stream_filling(redis: Redis, keys: StreamKeys) -> bytes | None:
    """Which filling of the stream its completeness marker vouches for (the marker's
    ``last-delivered-id``), or None when the stream or its marker is missing."""
    try:
        groups = await redis.xinfo_groups(keys.stream)
    except ResponseError:  # no such key: the stream is gone
        return None
    for group in groups:
        name = group.get("name")
        if name in (keys.group, keys.group.encode()):
            last = group.get("last-delivered-id", b"")
            return last if isinstance(last, bytes) else str(last).encode()
    return None


def connect(url: str, *, name: str, follower: bool = False) -> Redis:
    """A Redis client (no connection is made until first use). A follower's client never
    retries by itself: the follower must see every break, as events may be missed then.

    The pool waits for a free connection rather than failing: a burst of logins beyond
    the pool size must queue for a moment, not look like a Redis outage (which would put
    the login limits on the per-process fallback)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_POOL_SIZE,
        timeout=_POOL_WAIT,
        client_name=name,
        socket_connect_timeout=2.0,
        socket_timeout=_READ_TIMEOUT if follower else 2.0,
        retry=Retry(NoBackoff(), 0 if follower else 1),
    )
    return Redis.from_pool(pool)


class Worker:
    """A loop over a Redis client that can be stopped while blocked in a read.
    Cancelling a task in the middle of a redis-py (8.1) read can leave it awaiting the
    dead connection for good, so ``halt`` closes the connections instead and the loop
    ends on the error it gets; cancelling is only the last resort."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._stopping = asyncio.Event()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def halt(self, task: asyncio.Task[None]) -> None:
        self._stopping.set()
        await self._redis.connection_pool.disconnect()
        done, _ = await asyncio.wait({task}, timeout=_HALT_TIMEOUT)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=_HALT_TIMEOUT)


Seeder = Callable[[Redis], Awaitable[bool]]


class EventFollower(Worker):
    """Reads the stream into a ``RevocationList`` from where it left off, reconnecting
    after any break, and confirms the list each time it has read everything on a Redis
    that still holds every live revocation (the stream carries its marker)."""

    def __init__(
        self,
        redis: Redis,
        keys: StreamKeys,
        revocations: RevocationList,
        *,
        on_keys: Callable[[], None] | None = None,
        on_contact: Callable[[], None] | None = None,
        seed: Seeder | None = None,
    ) -> None:
        super().__init__(redis)
        self._keys = keys
        self._revocations = revocations
        self._on_keys = on_keys
        self._on_contact = on_contact
        self._seed = seed
        self.last_id: bytes | str = "0-0"  # from the start: every entry still kept
        self.filling: bytes | None = None  # the marker last vouched by (stream_filling)
        self.connected = False
        self.caught_up = asyncio.Event()
        self._delay = RETRY_FIRST

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._follow()
            except (RedisError, OSError) as exc:
                if self._stopping.is_set():
                    return
                if self.connected:
                    log.warning("lost Redis (%s): catching up when it is back", type(exc).__name__)
                self.connected = False
                await self._pause(self._delay)
                self._delay = min(2 * self._delay, RETRY_MAX)

    async def _follow(self) -> None:
        await self._redis.ping()
        self.connected = True
        self._delay = RETRY_FIRST
        if self._on_contact is not None:
            self._on_contact()  # a server reads the database log now: it may have missed events
        block: int | None = None  # the first read after (re)connecting answers at once
        while not self._stopping.is_set():
            response = await self._redis.xread(
                {self._keys.stream: self.last_id}, count=BATCH, block=block
            )
            read_at = time.monotonic()
            block = _BLOCK_MS
            count = self._apply(response)
            # Asked after the read: had Redis lost the stream before it, the marker would
            # be gone with it (until a server has put every live revocation back).
            filling = await stream_filling(self._redis, self._keys)
            if filling is None:
                if self._seed is not None and await self._seed(self._redis):
                    block = None  # read what was just put back before vouching
                continue
            if self.filling is not None and filling != self.filling:
                # Refilled since: its entries may sit below the last id read; start over.
                self.filling, self.last_id, block = filling, "0-0", None
                continue
            self.filling = filling
            if count < BATCH:
                self._revocations.confirm(read_at)
                self.caught_up.set()
            else:
                block = None

    def _apply(self, response: Any) -> int:
        count = 0
        keys_changed = False
        for _stream, entries in response or ():
            for entry_id, fields in entries:
                count += 1
                self.last_id = entry_id
                event = Event.parse(fields)
                if event is None:
                    continue
                if event.kind == RevocationKind.KEYS_CHANGED:
                    keys_changed = True
                else:
                    self._revocations.add(RevocationKind(event.kind), event.value, event.until)
        if keys_changed and self._on_keys is not None:
            self._on_keys()
        return count


class RevocationFeed:
    """A jwtauth server's revocations, followed from another service for its ``Verifier``::

        feed = RevocationFeed.from_redis("redis://redis:6379/0")
        await feed.start()
        verifier = Verifier.from_jwks_url(url, issuer=..., audience=...,
                                          revocations=feed.revocations)

    It reads every live revocation at start and each new one as it is published, so
    ``verify`` still does no I/O. Fails closed: while it cannot confirm it is caught up
    (Redis unreachable, or Redis lost its data and no server has refilled it yet) for
    more than ``max_staleness`` seconds (at least 3), every token is refused
    (``InvalidToken``). ``prefix`` is the server's ``JWTAUTH_REDIS_PREFIX``.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "jwtauth:",
        max_staleness: float | None = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        if max_staleness is not None:
            max_staleness = max(max_staleness, MIN_STALENESS)
        self.revocations = RevocationList(clock, max_staleness=max_staleness)
        self.follower = EventFollower(redis, StreamKeys.for_prefix(prefix), self.revocations)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_redis(cls, url: str, **options: Any) -> RevocationFeed:
        return cls(connect(url, name="jwtauth-feed", follower=True), **options)

    async def start(self, *, wait: float = 5.0) -> bool:
        """Start following; wait up to ``wait`` seconds for the first catch-up. True when
        caught up (else tokens are refused until it is)."""
        if self._task is None:
            self._task = asyncio.create_task(self.follower.run())
        try:
            await asyncio.wait_for(self.follower.caught_up.wait(), wait)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        if self._task is not None:
            await self.follower.halt(self._task)
            self._task = None
        await self._redis.aclose()


__all__ = [
    "Event", "EventFollower", "RevocationFeed", "StreamKeys", "Worker", "connect",
    "stream_filling",
]
