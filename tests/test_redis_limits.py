"""Login limits shared through Redis (API.md "Login limits"; issue 4, point 2): the rules of
the in-memory limiter, one count for every instance, keys that expire, and a fallback to
per-process limits while Redis is unreachable."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from jwtauth.errors import RateLimited
from jwtauth.events import connect
from jwtauth.server.ratelimit import LoginLimiter, LoginPolicy, MemoryLoginLimiter, WindowLimiter
from jwtauth.server.ratelimit_redis import RedisLoginLimiter, RedisWindowLimiter

from conftest import PASSWORD, REDIS_URL, AppFactory, Clock, free_port

RULES = {
    "max_failures": 3,
    "backoff_base": 1,
    "backoff_max": 60,
    "address_max_failures": 10,
    "address_window": 300,
}

LimiterFactory = Callable[..., RedisLoginLimiter]


@pytest.fixture
async def make_limiter(redis_prefix: str) -> AsyncIterator[LimiterFactory]:
    """A limiter of its own client (another instance, as far as Redis can tell)."""
    clients: list[Any] = []

    def build(clock: Clock, *, url: str = REDIS_URL, **rules: Any) -> RedisLoginLimiter:
        client = connect(url, name="jwtauth-test")
        clients.append(client)
        policy = LoginPolicy(**{**RULES, **rules})
        fallback = MemoryLoginLimiter(policy, clock=clock)
        return RedisLoginLimiter(client, policy, prefix=redis_prefix, clock=clock,
                                 fallback=fallback)

    yield build
    for client in clients:
        await client.aclose()


async def retry_after(limiter: LoginLimiter, address: str, username: str) -> int | None:
    """The Retry-After of a refused attempt, or None: admitted (and so counted)."""
    try:
        await limiter.attempt(address, username)
    except RateLimited as exc:
        return exc.retry_after
    return None


async def fail(limiter: LoginLimiter, times: int, address: str = "10.0.0.1",
               username: str = "alice") -> None:
    """``times`` admitted attempts that turned out wrong (they stay counted)."""
    for _ in range(times):
        await limiter.attempt(address, username)


async def test_back_off_starts_at_max_failures_and_doubles(make_limiter: LimiterFactory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    await fail(limiter, 3)
    assert await retry_after(limiter, "10.0.0.1", "alice") == 1
    clock.advance(1)
    await fail(limiter, 1)
    assert await retry_after(limiter, "10.0.0.1", "alice") == 2
    clock.advance(2)
    assert await retry_after(limiter, "10.0.0.1", "alice") is None


async def outcomes(limiter: LoginLimiter, clock: Clock, admitted: int) -> list[int | None]:
    """Attempt until ``admitted`` are counted, waiting out each refusal; the sequence of
    outcomes (None: admitted, else the Retry-After)."""
    seen: list[int | None] = []
    while seen.count(None) < admitted:
        wait = await retry_after(limiter, "10.0.0.1", "alice")
        seen.append(wait)
        if wait is not None:
            clock.advance(wait)
    return seen


async def test_back_off_is_capped(make_limiter: LimiterFactory) -> None:
    clock = Clock()
    limiter = make_limiter(clock, backoff_max=5)
    await outcomes(limiter, clock, 9)  # below the address limit (10): only the back-off
    assert await retry_after(limiter, "10.0.0.1", "alice") == 5


async def test_memory_and_redis_apply_the_one_back_off_rule(make_limiter: LimiterFactory) -> None:
    # The rule exists twice (LoginPolicy.backoff for memory, Lua inside Redis): the
    # fallback during an outage must limit exactly as Redis does.
    shared_clock, memory_clock = Clock(), Clock()
    shared = make_limiter(shared_clock, backoff_max=20)
    memory = MemoryLoginLimiter(shared.policy, clock=memory_clock)
    seen = await outcomes(shared, shared_clock, 9)
    assert await outcomes(memory, memory_clock, 9) == seen
    refusals = [wait for wait in seen if wait is not None]
    expected = [math.ceil(shared.policy.backoff(failures)) for failures in range(3, 9)]
    assert refusals == expected == [1, 2, 4, 8, 16, 20]  # 1 * 2**5 = 32, capped
    assert seen[:3] == [None, None, None]  # max_failures admitted before any back-off


async def test_failures_at_one_instance_limit_logins_at_another(
    make_limiter: LimiterFactory,
) -> None:
    clock = Clock()
    here, there = make_limiter(clock), make_limiter(clock)
    await fail(here, 3)
    assert await retry_after(there, "10.0.0.1", "alice") == 1


async def test_a_burst_at_several_instances_gets_exactly_the_budget(
    make_limiter: LimiterFactory,
) -> None:
    # Check and count are one Lua script: 40 attempts at once through two clients (two
    # instances, as far as Redis can tell) admit max_failures (3) for one account, and
    # address_max_failures (10) for one address across accounts.
    clock = Clock()
    here, there = make_limiter(clock), make_limiter(clock)
    one_account = await asyncio.gather(
        *(retry_after((here, there)[i % 2], "10.0.0.1", "alice") for i in range(40))
    )
    assert one_account.count(None) == 3
    many_accounts = await asyncio.gather(
        *(retry_after((here, there)[i % 2], "10.0.0.2", f"user{i}") for i in range(40))
    )
    assert many_accounts.count(None) == 10


async def test_a_success_clears_the_account_counter_and_refunds_its_attempt(
    make_limiter: LimiterFactory,
) -> None:
    clock = Clock()
    here, there = make_limiter(clock), make_limiter(clock, address_max_failures=6)
    await fail(here, 2)
    await there.succeeded(await there.attempt("10.0.0.1", "alice"))
    await fail(here, 2)
    # The account starts over at the success: its third failure since is admitted.
    assert await retry_after(there, "10.0.0.1", "alice") is None
    # Six attempts so far, one refunded: the address (at most 6) has room for one more.
    assert await retry_after(there, "10.0.0.1", "bob") is None
    assert await retry_after(there, "10.0.0.1", "carol") is not None


async def test_another_address_is_not_limited_by_these_failures(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(Clock())
    await fail(limiter, 3, address="10.0.0.1")
    assert await retry_after(limiter, "10.0.0.1", "alice") is not None
    assert await retry_after(limiter, "10.0.0.2", "alice") is None


async def test_an_address_is_limited_across_accounts_in_a_sliding_window(
    make_limiter: LimiterFactory,
) -> None:
    clock = Clock()
    limiter = make_limiter(clock, address_max_failures=4, address_window=100)
    for index in range(4):
        await fail(limiter, 1, username=f"user{index}")
        clock.advance(10)
    # The first failure (40 s ago) leaves the window in 60 s.
    assert await retry_after(limiter, "10.0.0.1", "someone-else") == 60
    assert await retry_after(limiter, "10.0.0.9", "someone-else") is None
    clock.advance(60)
    assert await retry_after(limiter, "10.0.0.1", "someone-else") is None


async def test_keys_expire_and_name_no_address_or_account(
    make_limiter: LimiterFactory, redis_prefix: str
) -> None:
    limiter = make_limiter(Clock(), address_window=300)
    await fail(limiter, 2, address="10.9.8.7", username="mallory")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key.decode() for key in client.scan_iter(match=redis_prefix + "login:*")]
        assert len(keys) == 2
        for key in keys:
            assert "mallory" not in key and "10.9.8.7" not in key
            assert 0 < client.pttl(key) <= 86400 * 1000
    finally:
        client.close()


async def test_while_redis_is_unreachable_limits_hold_per_process(
    make_limiter: LimiterFactory,
) -> None:
    # Nothing listens on this port: every Redis call fails at once.
    clock = Clock()
    limiter = make_limiter(clock, url=f"redis://127.0.0.1:{free_port()}/15")
    await fail(limiter, 3)
    assert await retry_after(limiter, "10.0.0.1", "alice") == 1
    clock.advance(1)
    await limiter.succeeded(await limiter.attempt("10.0.0.1", "alice"))
    assert await retry_after(limiter, "10.0.0.1", "alice") is None


async def test_failures_counted_during_an_outage_still_hold_when_redis_is_back(
    make_limiter: LimiterFactory,
) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    await fail(limiter.fallback, 3)  # as the fallback counted them
    assert await retry_after(limiter, "10.0.0.1", "alice") == 1


async def test_servers_with_a_redis_url_share_login_limits(
    redis_prefix: str, make_api: AppFactory
) -> None:
    shared = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix}
    here = await make_api(**shared)
    there = await make_api(clock=here.clock, **shared)
    assert isinstance(here.server.limiter, RedisLoginLimiter)
    await here.register("alice")
    for _ in range(5):
        response = await here.client.post(
            "/auth/login", json={"username": "alice", "password": "wrong-password-1"}
        )
        assert response.status_code == 401
    refused = await there.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


# -- registrations per address, shared (JWTAUTH_REGISTER_MAX_PER_ADDRESS) ----------------


async def test_servers_with_a_redis_url_share_registration_limits(
    redis_prefix: str, make_api: AppFactory
) -> None:
    shared = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix,
              "register_max_per_address": 2, "register_window": 60}
    here = await make_api(**shared)
    there = await make_api(clock=here.clock, **shared)
    assert isinstance(here.server.registrations, RedisWindowLimiter)
    await here.register("amy")
    await there.register("bob")
    refused = await here.client.post(
        "/auth/register", json={"username": "cyd", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    here.clock.advance(61)
    await there.register("cyd")


async def test_registration_limits_hold_per_process_while_redis_is_unreachable(
    redis_prefix: str,
) -> None:
    clock = Clock()
    client = connect(f"redis://127.0.0.1:{free_port()}/15", name="jwtauth-test")
    fallback = WindowLimiter(limit=2, window=60, clock=clock)
    limiter = RedisWindowLimiter(client, prefix=redis_prefix, clock=clock, fallback=fallback)
    try:
        await limiter.hit("10.0.0.1")
        await limiter.hit("10.0.0.1")
        with pytest.raises(RateLimited):
            await limiter.hit("10.0.0.1")
        await limiter.hit("10.0.0.2")
    finally:
        await client.aclose()


async def test_registration_keys_expire_and_name_no_address(redis_prefix: str) -> None:
    client = connect(REDIS_URL, name="jwtauth-test")
    clock = Clock()
    limiter = RedisWindowLimiter(client, prefix=redis_prefix, clock=clock,
                                 fallback=WindowLimiter(limit=5, window=300, clock=clock))
    try:
        await limiter.hit("10.9.8.7")
        keys = [key.decode() async for key in client.scan_iter(match=redis_prefix + "register:*")]
        assert len(keys) == 1 and "10.9.8.7" not in keys[0]
        assert 0 < await client.pttl(keys[0]) <= 301 * 1000
    finally:
        await client.aclose()
