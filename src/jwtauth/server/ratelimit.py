"""Login failure limits (API.md "Login limits"), in memory for one process.

Failures count per (client address, account) with exponential back-off after a
threshold, and per client address in a sliding window. While limited, even the right
password is answered 429, so guessing cannot continue behind the limit.

One step checks the budget and counts the attempt. ``attempt`` runs before the password
is hashed: it refuses (``RateLimited``) when the budget is spent, and otherwise counts
the attempt as a failure at once. ``succeeded`` refunds it once the password proved
right: the (address, account) counter is cleared and the attempt's entry leaves the
address window, so successes never count (API.md) once they are known. A check before
hashing and a count after it would let every request of a concurrent burst pass the
check before the first failure is counted.

What "a burst gets exactly the attempts the limits allow" means, with the defaults
(5 failures, back-off from 1 s doubling to 15 min, 100 failures per address in 5 min):

- One account from one address: of N attempts at once, ``min(N, 5)`` are admitted and
  the rest get 429. After the k-th counted failure (k >= 5) the next attempt is admitted
  only ``backoff(k)`` seconds after it (1 s, 2 s, 4 s ... 15 min): attempts 6, 7, ...
  that arrive inside that back-off get 429, however many arrive.
- One address across accounts: at most 100 attempts admitted in any 5-minute window.
- Refused attempts are not counted: a 429 neither costs budget nor extends a back-off.
- Attempts in flight count until they resolve. A correct password being hashed holds
  its place, so six concurrent correct sign-ins of one account from one address give
  five 200s and one 429. That is the price of deciding before hashing.

``ratelimit_redis`` keeps the same rules inside Redis (one Lua script per step);
``LoginPolicy.backoff`` is the one definition both follow, and a test holds the Lua
back-off to it.
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
_MAX_DOUBLINGS = 64  # 2.0 ** 1024 overflows a float; every cap is reached long before


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
        if excess < 0:
            return 0.0
        return min(self.backoff_max, self.backoff_base * 2.0 ** min(excess, _MAX_DOUBLINGS))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One admitted sign-in attempt, counted as a failure until ``succeeded`` refunds it.
    ``username`` is the key the caller chose (the case-folded name); ``ticket`` names the
    attempt's entry in a shared (Redis) address window, "" when counted in memory."""

    address: str
    username: str
    at: float
    ticket: str = ""


class LoginLimiter(Protocol):
    async def attempt(self, address: str, username: str) -> Attempt:
        """Count one attempt, or raise ``RateLimited`` (counting nothing) if the budget
        of the address or of (address, account) is spent."""
        ...

    async def succeeded(self, attempt: Attempt) -> None:
        """The attempt proved the password: refund it and clear the account's count."""
        ...


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

    def seconds_to_wait(self, address: str, username: str) -> float:
        """Seconds until an attempt would be admitted (0: now); counts nothing."""
        now = self._clock()
        wait = 0.0
        account = self._accounts.get((address, username))
        if account is not None:
            wait = self._account_wait(account, now)
        entry = self._addresses.get(address)
        if entry is not None:
            wait = max(wait, self._address_wait(entry, now))
        return wait

    async def attempt(self, address: str, username: str) -> Attempt:
        # No await from the check to the count: atomic on the event loop.
        wait = self.seconds_to_wait(address, username)
        if wait > 0:
            raise RateLimited(math.ceil(wait))
        now = self._clock()
        if len(self._accounts) > _MAX_TRACKED or len(self._addresses) > _MAX_TRACKED:
            self._forget_stale(now)
        account = self._accounts.setdefault((address, username), _Account())
        account.failures += 1
        account.last_failure = now
        self._addresses.setdefault(address, _Address()).failures.append(now)
        return Attempt(address, username, now)

    async def succeeded(self, attempt: Attempt) -> None:
        self._accounts.pop((attempt.address, attempt.username), None)
        entry = self._addresses.get(attempt.address)
        if entry is not None and not attempt.ticket:
            try:
                entry.failures.remove(attempt.at)
            except ValueError:
                pass  # already out of the window

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
