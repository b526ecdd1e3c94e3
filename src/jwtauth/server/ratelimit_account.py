"""Guessing one account from many addresses (issue 11, point 6): an account-wide delay.

``ratelimit.py`` counts failures per (address, account) and per address; an attacker
with many addresses stays under both. This limiter counts an account's failures from
any address in a sliding ``window`` (so it decays on its own) and, from ``threshold``
failures on, makes the account wait ``base * 2**(failures - threshold)`` seconds after
its latest failure, capped at ``cap`` (30 s by default): guessing slows to about one
try per ``cap`` seconds for the whole botnet, instead of one per address.

It is a delay, never a lock-out, and it spares the owner: client addresses that signed
in to the account successfully within ``known_for`` (30 days) are not slowed by it (the
per-address limits still apply to them), so an attacker cannot keep the owner out by
failing on purpose. Phase 2 may pass a device-cookie id instead of the address as
``address`` for a finer "known client".

The first failure that engages the delay writes an ``account_throttled`` audit event
(WARNING), and ``state`` tells the page how many failed sign-ins the account had
recently, so the user sees it.

Its steps are check / failed / succeeded with the address and the account key. The
per-address limiter (``ratelimit.py``) now checks and counts in one step before the
hash (``attempt`` / ``succeeded(attempt)``); wiring this throttle into sign-in must keep
that property (a burst may not pass the check together), so that ``/auth/login``,
``/auth/login/mfa`` (wrong TOTP codes count as login failures) and the password step
share it. The count lives in the database, which every instance shares;
a Redis twin would save one indexed read per sign-in and is left for when a
measurement asks for it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import RateLimited
from .audit import AuditEventName, Auditor
from .store.throttle import ThrottleStore

if TYPE_CHECKING:
    from .account_settings import AccountSettings


@dataclass(frozen=True, slots=True)
class AccountThrottlePolicy:
    threshold: int = 10
    base: float = 1.0
    cap: float = 30.0
    window: float = 900.0
    known_for: float = 30 * 86400.0

    @classmethod
    def from_settings(cls, settings: AccountSettings) -> AccountThrottlePolicy:
        return cls(
            threshold=settings.account_throttle_threshold,
            base=settings.account_throttle_base, cap=settings.account_throttle_max,
            window=settings.account_throttle_window,
        )

    def delay(self, failures: int) -> float:
        """Seconds after the latest failure before the account's next try; 0 below
        the threshold."""
        excess = failures - self.threshold
        return 0.0 if excess < 0 else float(min(self.cap, self.base * 2.0**excess))


@dataclass(frozen=True, slots=True)
class AccountThrottleState:
    """For the page: failed sign-ins in the window, and the current wait."""

    recent_failures: int
    wait: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def account_subject(username: str) -> str:
    # Names are compared without case (API.md), so "Alice" and "alice" share a count.
    return _digest("account\x00" + username.casefold())


class AccountThrottle:
    def __init__(
        self, store: ThrottleStore, policy: AccountThrottlePolicy, *,
        clock: Callable[[], float], auditor: Auditor | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._audit = auditor

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _wait(self, subject: str, now: datetime) -> tuple[int, float]:
        since = now - timedelta(seconds=self.policy.window)
        count, latest = await self.store.failures_since(subject, since)
        if latest is None:
            return count, 0.0
        until = latest.timestamp() + self.policy.delay(count)
        return count, max(0.0, until - now.timestamp())

    async def check(self, address: str, username: str) -> None:
        now = self._now()
        subject = account_subject(username)
        known_since = now - timedelta(seconds=self.policy.known_for)
        if await self.store.is_known(subject, _digest(address), known_since):
            return
        _, wait = await self._wait(subject, now)
        if wait > 0:
            raise RateLimited(math.ceil(wait))

    async def failed(self, address: str, username: str) -> None:
        now = self._now()
        subject = account_subject(username)
        await self.store.add_failure(subject, now)
        if self._audit is not None:
            count, _ = await self._wait(subject, now)
            if count == self.policy.threshold:  # the failure that engaged the delay
                await self._audit.record(
                    AuditEventName.ACCOUNT_THROTTLED, username=username,
                    detail={"failures": count, "window": self.policy.window},
                )

    async def succeeded(self, address: str, username: str) -> None:
        # The account's failures stay: the guessing elsewhere has not stopped.
        await self.store.remember(account_subject(username), _digest(address), self._now())

    async def state(self, username: str) -> AccountThrottleState:
        count, wait = await self._wait(account_subject(username), self._now())
        return AccountThrottleState(count, math.ceil(wait))

    async def prune(self) -> int:
        now = self._now()
        return await self.store.prune(
            failures_before=now - timedelta(seconds=self.policy.window),
            clients_before=now - timedelta(seconds=self.policy.known_for),
        )
