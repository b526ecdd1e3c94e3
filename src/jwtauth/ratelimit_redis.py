"""Login failure limits shared by every instance through Redis (API.md "Login limits").

The same rules as ``MemoryLoginLimiter``: per (client address, account), exponential
back-off once ``max_failures`` is reached; per client address, at most
``address_max_failures`` failures in a sliding window; a success clears its (address,
account) counter. Each step is one Lua script, so concurrent logins on several instances
count every failure. Keys are digests (no address or user name stored in the clear) and
expire on their own.

If Redis cannot be reached, the limiter falls back to the in-process limiter for a few
seconds at a time instead of refusing every login: limits then hold per process (an
attacker gets at most one budget per instance) and the server stays usable.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from .errors import RateLimited
from .ratelimit import LoginLimiter, LoginPolicy

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .config import Settings

log = logging.getLogger("jwtauth.ratelimit")

_OUTAGE_PAUSE = 5.0  # seconds on the fallback before trying Redis again
_ACCOUNT_MEMORY = 86400  # a failure counter outlives the longest back-off

# KEYS: account hash, address sorted set. ARGV: now, max failures, back-off base,
# back-off cap, address max, window. Returns the seconds to wait (as text: Lua numbers
# come back truncated to integers otherwise).
_CHECK = """
local now = tonumber(ARGV[1])
local wait = 0
local failures = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local excess = failures - tonumber(ARGV[2])
if excess >= 0 then
  local delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ excess)
  wait = tonumber(redis.call('HGET', KEYS[1], 't')) + delay - now
end
local window = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + window - now)
end
return tostring(wait)
"""

# KEYS: account hash, address sorted set. ARGV: now, account ttl ms, window, address
# max, a unique member.
_FAILED = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[3])
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
return 1
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class RedisLoginLimiter:
    def __init__(
        self,
        redis: Redis,
        policy: LoginPolicy,
        *,
        prefix: str,
        clock: Callable[[], float],
        fallback: LoginLimiter,
    ) -> None:
        self._redis = redis
        self.policy = policy
        self._prefix = prefix + "login:"
        self._clock = clock
        self.fallback = fallback
        longest = max(_ACCOUNT_MEMORY, 2 * policy.backoff_max, policy.address_window)
        self._account_ttl_ms = int(longest * 1000)
        self._check = redis.register_script(_CHECK)
        self._failed = redis.register_script(_FAILED)
        self._redis_back_at = 0.0  # monotonic: while in the future, use the fallback

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: Settings, *, fallback: LoginLimiter,
        clock: Callable[[], float],
    ) -> RedisLoginLimiter:
        return cls(
            redis, LoginPolicy.from_settings(settings), prefix=settings.redis_prefix,
            clock=clock, fallback=fallback,
        )

    def _keys(self, address: str, username: str) -> list[str]:
        account = self._prefix + "a:" + _digest(address, username)
        return [account, self._prefix + "ip:" + _digest(address)]

    def _usable(self) -> bool:
        return time.monotonic() >= self._redis_back_at

    def _lost(self, exc: Exception) -> None:
        if self._usable():
            log.warning(
                "login limits fall back to this process: Redis unreachable (%s)",
                type(exc).__name__,
            )
        self._redis_back_at = time.monotonic() + _OUTAGE_PAUSE

    async def check(self, address: str, username: str) -> None:
        p = self.policy
        if self._usable():
            try:
                raw = await self._check(
                    keys=self._keys(address, username),
                    args=[repr(self._clock()), p.max_failures, p.backoff_base, p.backoff_max,
                          p.address_max_failures, p.address_window],
                )
            except (RedisError, OSError) as exc:
                self._lost(exc)
            else:
                wait = float(raw)
                if wait > 0:
                    raise RateLimited(math.ceil(wait))
        # Always, and free (memory): failures counted here during an outage still hold.
        await self.fallback.check(address, username)

    async def failed(self, address: str, username: str) -> None:
        if self._usable():
            try:
                await self._failed(
                    keys=self._keys(address, username),
                    args=[repr(self._clock()), self._account_ttl_ms, self.policy.address_window,
                          self.policy.address_max_failures, secrets.token_hex(8)],
                )
                return
            except (RedisError, OSError) as exc:
                self._lost(exc)
        await self.fallback.failed(address, username)

    async def succeeded(self, address: str, username: str) -> None:
        # Clear both: the fallback may hold failures from an outage.
        await self.fallback.succeeded(address, username)
        if self._usable():
            try:
                await self._redis.delete(self._keys(address, username)[0])
            except (RedisError, OSError) as exc:
                self._lost(exc)
