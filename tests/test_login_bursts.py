"""Login limits under concurrency (issue 13, points 1 and 2): the check and the count are
one step before hashing, so a burst of any size gets exactly the attempts the limits
allow, with the in-memory limiter and with the Redis one; the current password of
POST /auth/password counts in the same limits and each wrong one is audited.

Figures (asserted below; before the fix every request of each burst was admitted):
burst of 30 wrong passwords for one account -> 5 x 401 and 25 x 429, then the right
password -> 429; burst of 110 failures from one address across accounts -> 100 x 401 and
10 x 429; burst of 20 wrong current passwords -> 5 x 403 and 15 x 429. The same counts
in memory and with Redis, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from jwtauth.server.audit import AuditEventName
from jwtauth.server.ratelimit_redis import RedisLoginLimiter

from conftest import PASSWORD, REDIS_URL, Api, AppFactory, Tokens

NEW_PASSWORD = "staple-quantum-lantern-42"


@pytest.fixture(params=["memory", "redis"])
def limits(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for the limiter under test. Name it before ``make_api``: the Redis
    prefix must outlive the servers (see conftest's ``redis_prefix``)."""
    if request.param == "memory":
        return {}
    return {"redis_url": REDIS_URL, "redis_prefix": request.getfixturevalue("redis_prefix")}


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


async def burst(client: httpx.AsyncClient, bodies: list[dict[str, str]],
                path: str = "/auth/login", headers: dict[str, str] | None = None
                ) -> Counter[int]:
    responses = await asyncio.gather(
        *(client.post(path, json=body, headers=headers) for body in bodies)
    )
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"] == "rate_limited"
            assert int(response.headers["Retry-After"]) >= 1
    return statuses(list(responses))


def check_limiter(api: Api, limits: dict[str, Any]) -> None:
    assert isinstance(api.server.limiter, RedisLoginLimiter) == bool(limits)


async def test_a_burst_of_wrong_passwords_gets_the_account_budget_and_429_for_the_rest(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    api = await make_api(**limits)
    check_limiter(api, limits)
    await api.register("alice")
    wrong = [{"username": "alice", "password": f"wrong-password-{i}"} for i in range(30)]
    assert await burst(api.client, wrong) == {401: 5, 429: 25}
    # The back-off holds for the right password too: guessing got 5 tries, not 30.
    right = await api.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert right.status_code == 429


async def test_a_burst_in_any_case_of_the_name_shares_one_account_budget(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    api = await make_api(**limits)
    await api.register("alice")
    spellings = ["alice", "Alice", "ALICE", "aLiCe", "alicE", "ALice"]
    wrong = [{"username": spellings[i % 6], "password": f"wrong-{i}-xx"} for i in range(12)]
    assert await burst(api.client, wrong) == {401: 5, 429: 7}


async def test_a_burst_from_one_address_gets_the_address_budget_and_429_for_the_rest(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    api = await make_api(**limits)
    # 110 different accounts: the per-account back-off never applies, only the 100 per
    # address (API.md) does.
    bodies = [{"username": f"user{i}", "password": PASSWORD} for i in range(110)]
    assert await burst(api.client, bodies) == {401: 100, 429: 10}


async def test_the_attempts_of_a_burst_that_succeed_are_refunded(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    # Successes never count (API.md): ten sign-ins of ten accounts at once, then the
    # address still has its whole budget for failures of another account.
    api = await make_api(**limits, login_address_max_failures=12)
    for index in range(10):
        await api.register(f"user{index}")
    good = [{"username": f"user{i}", "password": PASSWORD} for i in range(10)]
    assert await burst(api.client, good) == {200: 10}
    bad = [{"username": f"nobody{i}", "password": PASSWORD} for i in range(14)]
    assert await burst(api.client, bad) == {401: 12, 429: 2}


async def test_a_success_clears_the_account_count(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    api = await make_api(**limits)
    await api.register("alice")
    wrong = [{"username": "alice", "password": f"wrong-password-{i}"} for i in range(4)]
    assert await burst(api.client, wrong) == {401: 4}
    await api.login("ALICE")
    assert await burst(api.client, wrong * 2) == {401: 5, 429: 3}


# -- the current password of POST /auth/password (point 2) -------------------------------


async def change(api: Api, tokens: Tokens, current: str) -> httpx.Response:
    return await api.client.post(
        "/auth/password", headers=tokens.headers,
        json={"current_password": current, "new_password": NEW_PASSWORD},
    )


async def test_guessing_the_current_password_counts_in_the_login_limits(
    limits: dict[str, Any], make_api: AppFactory
) -> None:
    api = await make_api(**limits)
    tokens = await api.signup("alice")
    guesses = [
        {"current_password": f"guess-{i}-password", "new_password": NEW_PASSWORD}
        for i in range(20)
    ]
    assert await burst(api.client, guesses, "/auth/password", tokens.headers) == {
        403: 5, 429: 15,
    }
    assert (await change(api, tokens, PASSWORD)).status_code == 429
    login = await api.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 429  # one budget for the account at this address

    store = api.server.audit_store
    failed = await store.page(limit=100, event=AuditEventName.PASSWORD_CHANGE_FAILED)
    assert len(failed) == 5
    me = (await api.client.get("/users/me", headers=tokens.headers)).json()
    for event in failed:
        assert event.user_id == me["id"] and event.username == "alice"
        assert event.client_ip and event.session_id
    limited = await store.page(limit=100, event=AuditEventName.LOGIN_RATE_LIMITED)
    assert sum(e.detail.get("via") == "password_change" for e in limited) == 16
    assert sum("via" not in e.detail for e in limited) == 1  # the login


async def test_a_right_current_password_clears_the_count(make_api: AppFactory) -> None:
    api = await make_api()
    tokens = await api.signup("alice")
    for index in range(4):
        assert (await change(api, tokens, f"guess-{index}-password")).status_code == 403
    assert (await change(api, tokens, PASSWORD)).status_code == 204
    for index in range(4):
        wrong = await api.client.post(
            "/auth/login", json={"username": "alice", "password": f"guess-{index}-password"}
        )
        assert wrong.status_code == 401
    assert (await api.login("alice", NEW_PASSWORD)).access_token
