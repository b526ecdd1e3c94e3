"""Login failure limits (API.md "Login limits") and registration limits, shared by every
instance through Redis.

The same rules as ``MemoryLoginLimiter``: per (client address, account), exponential
back-off once ``max_failures`` is reached; per client address, at most
``address_max_failures`` failures in a sliding window; a success clears its (address,
account) counter. Each step is one Lua script, so concurrent logins on several instances
count every failure. Keys are digests (no address or user name stored in the clear) and
expire on their own.

If Redis cannot be reached, a limiter falls back to its in-process twin for a few seconds
at a time instead of refusing every request: limits then hold per process (an attacker
gets at most one budget per instance) and the server stays usable.
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

from ..errors import RateLimited
from .ratelimit import LoginLimiter, LoginPolicy, WindowLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from .config import Settings

log = logging.getLogger("jwtauth.server.ratelimit")

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


# KEYS: the sorted set of one address. ARGV: now, window, limit, a unique member.
# Returns the seconds to wait, "0" when the event was counted.
_HIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return '0'
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class _RedisOrFallback:
    """Redis while it answers; for ``_OUTAGE_PAUSE`` seconds after a failure, the
    in-process fallback (logged once per outage)."""

    _what = "limits"

    def __init__(self) -> None:
        self._redis_back_at = 0.0  # monotonic: while in the future, use the fallback

    def _usable(self) -> bool:
        return time.monotonic() >= self._redis_back_at

    def _lost(self, exc: Exception) -> None:
        if self._usable():
            log.warning(
                "%s fall back to this process: Redis unreachable (%s)",
                self._what, type(exc).__name__,
            )
        self._redis_back_at = time.monotonic() + _OUTAGE_PAUSE

    async def _refuse_if_waiting(
        self, script: AsyncScript, keys: list[str], args: list[str | int | float]
    ) -> None:
        """Run a script that answers the seconds to wait; raise ``RateLimited`` if any.
        An unreachable Redis is noted, and the caller's fallback decides instead."""
        if not self._usable():
            return
        try:
            raw = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return
        wait = float(raw)
        if wait > 0:
            raise RateLimited(math.ceil(wait))


class RedisLoginLimiter(_RedisOrFallback):
    _what = "login limits"

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
        super().__init__()

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

    async def check(self, address: str, username: str) -> None:
        p = self.policy
        await self._refuse_if_waiting(
            self._check, self._keys(address, username),
            [repr(self._clock()), p.max_failures, p.backoff_base, p.backoff_max,
             p.address_max_failures, p.address_window],
        )
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


class RedisWindowLimiter(_RedisOrFallback):
    """``ratelimit.WindowLimiter`` with one count for every instance (registrations per
    client address). The in-process twin counts too, so what it saw during an outage
    still holds afterwards."""

    _what = "registration limits"

    def __init__(
        self, redis: Redis, *, prefix: str, clock: Callable[[], float], fallback: WindowLimiter
    ) -> None:
        self._prefix = prefix + "register:"
        self._clock = clock
        self.fallback = fallback
        self._hit = redis.register_script(_HIT)
        super().__init__()

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: Settings, *, clock: Callable[[], float]
    ) -> RedisWindowLimiter:
        fallback = WindowLimiter(
            limit=settings.register_max_per_address, window=settings.register_window,
            clock=clock,
        )
        return cls(redis, prefix=settings.redis_prefix, clock=clock, fallback=fallback)

    async def hit(self, key: str) -> None:
        await self._refuse_if_waiting(
            self._hit, [self._prefix + _digest(key)],
            [repr(self._clock()), self.fallback.window, self.fallback.limit,
             secrets.token_hex(8)],
        )
        await self.fallback.hit(key)
