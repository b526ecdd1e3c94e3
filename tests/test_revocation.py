"""Revocation: every way a session ends kills its access tokens at once and only its own;
revocations survive restarts, reach other processes, and are forgotten once harmless."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conftest import PASSWORD, Api, AppFactory, Tokens

ACCESS_TTL = 900
CLOCK_SKEW = 30


async def me(api: Api, tokens: Tokens) -> httpx.Response:
    return await api.client.get("/users/me", headers=tokens.headers)


async def assert_rejected(api: Api, tokens: Tokens) -> None:
    response = await me(api, tokens)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def assert_accepted(api: Api, tokens: Tokens) -> None:
    response = await me(api, tokens)
    assert response.status_code == 200, response.text


async def assert_refresh_refused(api: Api, tokens: Tokens) -> None:
    response = await api.client.post(
        "/auth/refresh", json={"refresh_token": tokens.refresh_token}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_grant"


async def two_sessions_and_a_bystander(api: Api) -> tuple[Tokens, Tokens, Tokens]:
    """Alice on two devices and Bob; the client's cookie jar is left empty, so each call
    names its session by the bearer token alone."""
    first = await api.signup("alice")
    second = await api.login("alice")
    bob = await api.signup("bob")
    api.client.cookies.clear()
    return first, second, bob


async def session_ids(api: Api, tokens: Tokens) -> dict[bool, str]:
    """{current: id} of the user's sessions as seen from ``tokens``' session."""
    response = await api.client.get("/auth/sessions", headers=tokens.headers)
    assert response.status_code == 200, response.text
    return {s["current"]: s["id"] for s in response.json()}


# -- each way of ending a session ----------------------------------------------------


async def test_logout_rejects_that_sessions_access_tokens_only(api: Api) -> None:
    first, second, bob = await two_sessions_and_a_bystander(api)
    response = await api.client.post("/auth/logout", headers=first.headers)
    assert response.status_code == 204
    await assert_rejected(api, first)
    await assert_refresh_refused(api, first)
    await assert_accepted(api, second)
    await assert_accepted(api, bob)


async def test_logout_with_the_cookie_alone_rejects_the_sessions_access_tokens(
    api: Api,
) -> None:
    other = await api.signup("alice")
    current = await api.login("alice")  # its refresh token is now the jar's cookie
    assert api.client.cookies.get("refresh_token") == current.refresh_token
    response = await api.client.post("/auth/logout")
    assert response.status_code == 204
    await assert_rejected(api, current)
    await assert_accepted(api, other)


async def test_logout_all_rejects_every_session_of_the_user(api: Api) -> None:
    first, second, bob = await two_sessions_and_a_bystander(api)
    response = await api.client.post("/auth/logout-all", headers=first.headers)
    assert response.status_code == 204
    await assert_rejected(api, first)
    await assert_rejected(api, second)
    await assert_refresh_refused(api, second)
    await assert_accepted(api, bob)


async def test_ending_another_session_rejects_its_access_tokens(api: Api) -> None:
    first, second, bob = await two_sessions_and_a_bystander(api)
    other_id = (await session_ids(api, first))[False]
    response = await api.client.delete(f"/auth/sessions/{other_id}", headers=first.headers)
    assert response.status_code == 204
    await assert_rejected(api, second)
    await assert_refresh_refused(api, second)
    await assert_accepted(api, first)
    await assert_accepted(api, bob)


async def test_ending_someone_elses_session_is_not_found_and_harmless(api: Api) -> None:
    first, _, bob = await two_sessions_and_a_bystander(api)
    alice_session = (await session_ids(api, first))[True]
    response = await api.client.delete(f"/auth/sessions/{alice_session}", headers=bob.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    await assert_accepted(api, first)


async def test_password_change_rejects_the_other_sessions(api: Api) -> None:
    first, second, bob = await two_sessions_and_a_bystander(api)
    response = await api.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-and-long-passphrase-7"},
        headers=first.headers,
    )
    assert response.status_code == 204, response.text
    await assert_rejected(api, second)
    await assert_refresh_refused(api, second)
    await assert_accepted(api, first)
    await assert_accepted(api, bob)


async def test_deleting_a_user_rejects_all_of_their_tokens(api: Api) -> None:
    admin = await api.admin()
    first, second, bob = await two_sessions_and_a_bystander(api)
    alice_id = (await me(api, first)).json()["id"]
    response = await api.client.delete(f"/admin/users/{alice_id}", headers=admin.headers)
    assert response.status_code == 204
    await assert_rejected(api, first)
    await assert_rejected(api, second)
    await assert_refresh_refused(api, first)
    await assert_accepted(api, bob)
    await assert_accepted(api, admin)


# -- across restarts and processes ---------------------------------------------------


async def test_revocations_survive_a_restart(make_api: AppFactory) -> None:
    before = await make_api()
    revoked = await before.signup("alice")
    kept = await before.login("alice")
    before.client.cookies.clear()
    assert (await before.client.post("/auth/logout", headers=revoked.headers)).status_code == 204
    # A poll interval far beyond the test: only the start-up load can know the logout.
    after = await make_api(clock=before.clock, revocation_poll_interval=60)
    await assert_rejected(after, revoked)
    await assert_accepted(after, kept)


async def test_deleted_user_stays_rejected_after_a_restart(make_api: AppFactory) -> None:
    before = await make_api()
    admin = await before.admin()
    alice = await before.signup("alice")
    alice_id = (await me(before, alice)).json()["id"]
    deleted = await before.client.delete(f"/admin/users/{alice_id}", headers=admin.headers)
    assert deleted.status_code == 204
    after = await make_api(clock=before.clock, revocation_poll_interval=60)
    await assert_rejected(after, alice)
    await assert_accepted(after, admin)


async def wait_until_rejected(api: Api, tokens: Tokens) -> None:
    """Wait (at most 1 s) for the background poll of ``api`` to learn a revocation."""
    for _ in range(40):
        if (await me(api, tokens)).status_code == 401:
            break
        await asyncio.sleep(0.025)
    await assert_rejected(api, tokens)


@pytest.mark.parametrize("ending", ["logout", "logout-all", "delete-user"])
async def test_another_process_follows_revocations(make_api: AppFactory, ending: str) -> None:
    here = await make_api(revocation_poll_interval=0.05)
    there = await make_api(clock=here.clock, revocation_poll_interval=0.05)
    admin = await here.admin()
    alice = await here.signup("alice")
    bob = await here.signup("bob")
    here.client.cookies.clear()
    await assert_accepted(there, alice)  # same database, same keys: tokens interchangeable
    if ending == "delete-user":
        alice_id = (await me(here, alice)).json()["id"]
        response = await here.client.delete(f"/admin/users/{alice_id}", headers=admin.headers)
    else:
        response = await here.client.post(f"/auth/{ending}", headers=alice.headers)
    assert response.status_code == 204
    await wait_until_rejected(there, alice)
    await assert_accepted(there, bob)


# -- forgetting (the list itself: tests/library/test_revocation_list.py) ----------------


async def test_server_remembers_a_revocation_as_long_as_the_token_could_verify(
    api: Api,
) -> None:
    alice = await api.signup("alice")
    api.client.cookies.clear()
    assert (await api.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    # 929 s on, the token is past exp but inside the clock skew: only revocation stops it.
    api.clock.advance(ACCESS_TTL + CLOCK_SKEW - 1)
    await assert_rejected(api, alice)
    assert len(api.server.revocations) == 1
    api.clock.advance(2)
    bob = await api.signup("bob")
    await assert_accepted(api, bob)  # a verification purges what expired
    assert len(api.server.revocations) == 0
    await assert_rejected(api, alice)  # expired by now anyway
