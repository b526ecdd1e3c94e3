"""Login failure limits (API.md "Login limits") and registration limits, shared by every
instance through Redis.

The same rules as ``MemoryLoginLimiter`` (ratelimit.py's docstring: an attempt is checked
and counted in one step before hashing, a success refunds it): per (client address,
account), exponential back-off once ``max_failures`` is reached; per client address, at
most ``address_max_failures`` failures in a sliding window. Each step is one Lua script,
so a burst of concurrent logins, on one instance or several, gets exactly the attempts
the limits allow. Keys are digests (no address or user name stored in the clear) and
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
from .ratelimit import Attempt, LoginPolicy, MemoryLoginLimiter, WindowLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from .config import Settings

log = logging.getLogger("jwtauth.server.ratelimit")

_OUTAGE_PAUSE = 5.0  # seconds on the fallback before trying Redis again
_ACCOUNT_MEMORY = 86400  # a failure counter outlives the longest back-off

# KEYS: account hash, address sorted set. ARGV: now, max failures, back-off base,
# back-off cap, address max, window, account ttl ms, a unique member. Checks both
# budgets and, if neither is spent, counts the attempt in the same step (the module
# docstring of ratelimit.py says why). Returns the seconds to wait, "0" when counted
# (as text: Lua numbers come back truncated to integers otherwise).
_ATTEMPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[6])
local wait = 0
local failures = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local excess = failures - tonumber(ARGV[2])
if excess >= 0 then
  local delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ excess)
  wait = tonumber(redis.call('HGET', KEYS[1], 't')) + delay - now
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + window - now)
end
if wait > 0 then
  return tostring(wait)
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], now, ARGV[8])
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
return '0'
"""

# KEYS: account hash, address sorted set. ARGV: the attempt's member. A success: the
# account starts over and the attempt leaves the address window.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
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
    ) -> bool:
        """Run a script that answers the seconds to wait; raise ``RateLimited`` if any.
        True when Redis counted the event; False when it is unreachable (noted), and the
        caller's fallback decides instead."""
        if not self._usable():
            return False
        try:
            raw = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return False
        wait = float(raw)
        if wait > 0:
            raise RateLimited(math.ceil(wait))
        return True


class RedisLoginLimiter(_RedisOrFallback):
    _what = "login limits"

    def __init__(
        self,
        redis: Redis,
        policy: LoginPolicy,
        *,
        prefix: str,
        clock: Callable[[], float],
        fallback: MemoryLoginLimiter,
    ) -> None:
        self._redis = redis
        self.policy = policy
        self._prefix = prefix + "login:"
        self._clock = clock
        self.fallback = fallback
        longest = max(_ACCOUNT_MEMORY, 2 * policy.backoff_max, policy.address_window)
        self._account_ttl_ms = int(longest * 1000)
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)
        super().__init__()

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: Settings, *, fallback: MemoryLoginLimiter,
        clock: Callable[[], float],
    ) -> RedisLoginLimiter:
        return cls(
            redis, LoginPolicy.from_settings(settings), prefix=settings.redis_prefix,
            clock=clock, fallback=fallback,
        )

    def _keys(self, address: str, username: str) -> list[str]:
        account = self._prefix + "a:" + _digest(address, username)
        return [account, self._prefix + "ip:" + _digest(address)]

    async def attempt(self, address: str, username: str) -> Attempt:
        # Failures the fallback counted during an outage still hold (free: memory).
        wait = self.fallback.seconds_to_wait(address, username)
        if wait > 0:
            raise RateLimited(math.ceil(wait))
        p = self.policy
        now = self._clock()
        ticket = secrets.token_hex(8)
        if await self._refuse_if_waiting(
            self._attempt, self._keys(address, username),
            [repr(now), p.max_failures, p.backoff_base, p.backoff_max,
             p.address_max_failures, p.address_window, self._account_ttl_ms, ticket],
        ):
            return Attempt(address, username, now, ticket)
        return await self.fallback.attempt(address, username)

    async def succeeded(self, attempt: Attempt) -> None:
        # Clear both: the fallback may hold failures from an outage.
        await self.fallback.succeeded(attempt)
        if self._usable():
            try:
                await self._succeeded(
                    keys=self._keys(attempt.address, attempt.username), args=[attempt.ticket]
                )
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
