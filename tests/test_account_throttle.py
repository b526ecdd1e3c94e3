"""Guessing one account from many addresses (issue 11, point 6): the account-wide delay
grows with failures from any address, is capped (no lock-out), decays with its window,
spares addresses that signed in before, counts concurrent failures, is audited once it
engages, and composes with the per-address limiter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from jwtauth.errors import RateLimited
from jwtauth.server.ratelimit_account import (
    AccountThrottle,
    AccountThrottlePolicy,
)
from jwtauth.server.store.throttle import ThrottleStore

from accounts_kit import audit_rows, auditor_for, open_db
from conftest import Backend, Clock

POLICY = AccountThrottlePolicy(threshold=10, base=1, cap=30, window=900)


def test_policy_grows_and_is_capped() -> None:
    assert [POLICY.delay(n) for n in (0, 9, 10, 11, 12, 14, 15, 40)] == [
        0, 0, 1, 2, 4, 16, 30, 30]


async def waits(throttle: AccountThrottle, address: str, username: str = "alice") -> int:
    try:
        await throttle.check(address, username)
    except RateLimited as exc:
        return exc.retry_after
    return 0


async def test_many_addresses_slow_the_account_capped_and_decaying(backend: Backend) -> None:
    clock = Clock()
    async with open_db(backend) as db:
        auditor = auditor_for(db, lambda: datetime.fromtimestamp(clock(), UTC))
        throttle = AccountThrottle(ThrottleStore(db), POLICY, clock=clock, auditor=auditor)
        for i in range(9):
            await throttle.failed(f"10.0.0.{i}", "alice")
        assert await waits(throttle, "10.9.9.9") == 0
        await throttle.failed("10.0.0.9", "Alice")  # the 10th; any case
        assert await waits(throttle, "10.9.9.9") == 1
        assert await waits(throttle, "10.9.9.9", "bob") == 0  # other accounts unaffected
        clock.advance(1)
        assert await waits(throttle, "10.9.9.9") == 0  # a delay, not a lock
        for i in range(10):
            await throttle.failed(f"10.1.0.{i}", "alice")
        assert await waits(throttle, "10.9.9.9") == 30  # capped
        state = await throttle.state("alice")
        assert (state.recent_failures, state.wait) == (20, 30)
        clock.advance(901)  # the window slides past every failure
        assert await waits(throttle, "10.9.9.9") == 0
        assert (await throttle.state("alice")).recent_failures == 0
        engaged = [e for e in await audit_rows(db) if e["event"] == "account_throttled"]
        assert len(engaged) == 1 and engaged[0]["username"] == "Alice"
        assert await throttle.prune() == 20


async def test_the_owners_known_address_is_not_slowed(backend: Backend) -> None:
    clock = Clock()
    async with open_db(backend) as db:
        throttle = AccountThrottle(ThrottleStore(db), POLICY, clock=clock)
        await throttle.succeeded("192.0.2.7", "alice")
        for i in range(15):
            await throttle.failed(f"198.51.100.{i}", "alice")
        assert await waits(throttle, "198.51.100.200") == 30
        assert await waits(throttle, "192.0.2.7") == 0  # the owner gets in
        await throttle.succeeded("192.0.2.7", "alice")  # and remains known
        clock.advance(31 * 86400)  # known for 30 days after the last success
        for i in range(15):
            await throttle.failed(f"198.51.100.{i}", "alice")
        assert await waits(throttle, "192.0.2.7") == 30


async def test_concurrent_failures_all_count(backend: Backend) -> None:
    clock = Clock()
    async with open_db(backend) as a, open_db(backend) as b:
        one = AccountThrottle(ThrottleStore(a), POLICY, clock=clock)
        two = AccountThrottle(ThrottleStore(b), POLICY, clock=clock)
        await asyncio.gather(*((one if i % 2 else two).failed(f"203.0.113.{i}", "alice")
                               for i in range(24)))
        assert (await one.state("alice")).recent_failures == 24
        assert await waits(two, "203.0.113.250") == 30


