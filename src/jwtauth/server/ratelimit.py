"""Login failure limits (API.md "Login limits"), in memory for one process.

Failures count per (client address, account) with exponential back-off after a
threshold, and per client address in a sliding window. Successes never count, and a
success clears its (address, account) counter. While limited, even the right password
is answered 429, so guessing cannot continue behind the limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..errors import RateLimited

if TYPE_CHECKING:
    from .config import Settings

_MAX_TRACKED = 100_000


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The numbers of API.md "Login limits", one set for every limiter and instance."""

    max_failures: int
    backoff_base: float
    backoff_max: float
    address_max_failures: int
    address_window: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            backoff_base=settings.login_backoff_base,
            backoff_max=settings.login_backoff_max,
            address_max_failures=settings.login_address_max_failures,
            address_window=settings.login_address_window,
        )

    def backoff(self, failures: int) -> float:
        """Seconds an account waits after its last failure; 0 below the threshold.
        (ratelimit_redis.py's Lua applies the same rule inside Redis.)"""
        excess = failures - self.max_failures
        return 0.0 if excess < 0 else min(self.backoff_max, self.backoff_base * 2.0**excess)


class LoginLimiter(Protocol):
    async def check(self, address: str, username: str) -> None: ...
    async def failed(self, address: str, username: str) -> None: ...
    async def succeeded(self, address: str, username: str) -> None: ...


@dataclass(slots=True)
class _Account:
    failures: int = 0
    last_failure: float = 0.0


@dataclass(slots=True)
class _Address:
    failures: deque[float] = field(default_factory=deque)


class MemoryLoginLimiter:
    def __init__(self, policy: LoginPolicy, *, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._addresses: dict[str, _Address] = {}

    def _account_wait(self, account: _Account, now: float) -> float:
        delay = self.policy.backoff(account.failures)
        return account.last_failure + delay - now if delay else 0.0

    def _address_wait(self, entry: _Address, now: float) -> float:
        window = self.policy.address_window
        while entry.failures and entry.failures[0] <= now - window:
            entry.failures.popleft()
        if len(entry.failures) < self.policy.address_max_failures:
            return 0.0
        return entry.failures[0] + window - now

    async def check(self, address: str, username: str) -> None:
        now = self._clock()
        wait = 0.0
        account = self._accounts.get((address, username))
        if account is not None:
            wait = self._account_wait(account, now)
        entry = self._addresses.get(address)
        if entry is not None:
            wait = max(wait, self._address_wait(entry, now))
        if wait > 0:
            raise RateLimited(math.ceil(wait))

    async def failed(self, address: str, username: str) -> None:
        now = self._clock()
        if len(self._accounts) > _MAX_TRACKED or len(self._addresses) > _MAX_TRACKED:
            self._forget_stale(now)
        account = self._accounts.setdefault((address, username), _Account())
        account.failures += 1
        account.last_failure = now
        self._addresses.setdefault(address, _Address()).failures.append(now)

    async def succeeded(self, address: str, username: str) -> None:
        self._accounts.pop((address, username), None)

    def _forget_stale(self, now: float) -> None:
        horizon = max(self.policy.backoff_max, self.policy.address_window)
        self._accounts = {
            k: v for k, v in self._accounts.items() if v.last_failure > now - horizon
        }
        self._addresses = {
            k: v
            for k, v in self._addresses.items()
            if v.failures and v.failures[-1] > now - horizon
        }


class EventLimiter(Protocol):
    async def hit(self, key: str) -> None:
        """Count one event for ``key``, or raise ``RateLimited`` if the window is full."""
        ...


class WindowLimiter:
    """At most ``limit`` events per key in a sliding ``window`` (seconds), in memory.

    Used for registrations per client address: each one costs a password hash, so an
    unlimited endpoint would let anyone burn the server's CPU and fill its user table.
    """

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    async def hit(self, key: str) -> None:
        """Count one event for ``key``, or raise ``RateLimited`` if the window is full."""
        now = self._clock()
        if len(self._events) > _MAX_TRACKED:
            since = now - self.window
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > since}
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            raise RateLimited(math.ceil(events[0] + self.window - now))
        events.append(now)
