"""API.md "Refresh token", "Token response" and "Refresh cookie": rotation, reuse
detection, expiry, the cookie flow and its origin check, and concurrent refreshes."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import httpx
import sqlalchemy as sa

from conftest import Api, AppFactory, Tokens

URL_SAFE_256_BITS = re.compile(r"^[A-Za-z0-9_-]{43,}$")
WEEK = 7 * 86400


async def refresh(api: Api, token: str) -> httpx.Response:
    return await api.client.post("/auth/refresh", json={"refresh_token": token})


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert isinstance(body["message"], str) and body["message"]


async def assert_access_rejected(api: Api, access_token: str) -> None:
    response = await api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def assert_access_accepted(api: Api, access_token: str) -> None:
    response = await api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text


async def token_rows(api: Api) -> list[dict[str, object]]:
    async with api.server.db.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT * FROM refresh_tokens"))
        return [dict(row._mapping) for row in rows]


def session_of(api: Api, tokens: Tokens) -> str:
    return api.service.verifier.verify_sync(tokens.access_token).sid


# -- body flow -----------------------------------------------------------------------


async def test_body_refresh_rotates_and_old_token_is_then_refused(api: Api) -> None:
    tokens = await api.signup()
    response = await refresh(api, tokens.refresh_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["refresh_token"] != tokens.refresh_token
    assert response.headers["cache-control"] == "no-store"  # RFC 6749 section 5.1
    await assert_access_accepted(api, body["access_token"])
    assert_invalid_grant(await refresh(api, tokens.refresh_token))


async def test_refresh_token_is_opaque_with_256_bits(api: Api) -> None:
    tokens = await api.signup()
    rotated = (await refresh(api, tokens.refresh_token)).json()["refresh_token"]
    for token in (tokens.refresh_token, rotated):
        assert URL_SAFE_256_BITS.match(token), token
        assert token.count(".") == 0  # not a JWT


async def test_database_stores_only_the_sha256_of_refresh_tokens(api: Api) -> None:
    tokens = await api.signup()
    rotated = (await refresh(api, tokens.refresh_token)).json()["refresh_token"]
    rows = await token_rows(api)
    stored = {row["token_hash"] for row in rows}
    for token in (tokens.refresh_token, rotated):
        assert hashlib.sha256(token.encode()).hexdigest() in stored
        for row in rows:
            assert all(token not in str(value) for value in row.values())


# -- cookie flow ---------------------------------------------------------------------


async def test_cookie_refresh_rotates_the_cookie_and_keeps_token_out_of_body(api: Api) -> None:
    tokens = await api.signup()
    assert api.client.cookies.get("refresh_token") == tokens.refresh_token
    response = await api.client.post("/auth/refresh")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    rotated = api.client.cookies.get("refresh_token")
    assert rotated and rotated != tokens.refresh_token
    assert response.headers.get_list("set-cookie") == [
        f"refresh_token={rotated}; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age={WEEK}"
    ]
    await assert_access_accepted(api, body["access_token"])
    assert_invalid_grant(await refresh(api, tokens.refresh_token))


async def test_cookie_refresh_from_another_origin_is_forbidden(api: Api) -> None:
    tokens = await api.signup()
    response = await api.client.post(
        "/auth/refresh", headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    # Refused before use: the cookie was not rotated and still works from our own page.
    assert api.client.cookies.get("refresh_token") == tokens.refresh_token
    again = await api.client.post("/auth/refresh")
    assert again.status_code == 200, again.text


async def test_cookie_refresh_from_the_servers_own_origin_works(api: Api) -> None:
    await api.signup()
    response = await api.client.post(
        "/auth/refresh", headers={"Origin": "https://jwtauth.test"}
    )
    assert response.status_code == 200, response.text


async def test_cookie_refresh_from_an_allowed_origin_works(make_api: AppFactory) -> None:
    api = await make_api(allowed_origins="https://app.example")
    await api.signup()
    allowed = await api.client.post("/auth/refresh", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200, allowed.text
    other = await api.client.post("/auth/refresh", headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    assert other.json()["error"] == "forbidden"


# -- bad tokens ----------------------------------------------------------------------


async def test_missing_refresh_token_is_invalid_grant(api: Api) -> None:
    await api.register()
    assert "refresh_token" not in api.client.cookies
    assert_invalid_grant(await api.client.post("/auth/refresh"))
    assert_invalid_grant(await api.client.post("/auth/refresh", json={}))


async def test_garbage_refresh_token_is_invalid_grant(api: Api) -> None:
    await api.signup()
    api.client.cookies.clear()
    assert_invalid_grant(await refresh(api, "not-a-token"))
    assert_invalid_grant(await refresh(api, "A" * 43))


async def test_expired_refresh_token_is_invalid_grant(make_api: AppFactory) -> None:
    api = await make_api(refresh_ttl=60)
    tokens = await api.signup()
    api.clock.advance(61)
    assert_invalid_grant(await refresh(api, tokens.refresh_token))


async def test_refresh_expiry_slides_with_each_use(make_api: AppFactory) -> None:
    api = await make_api(refresh_ttl=60)
    token = (await api.signup()).refresh_token
    for _ in range(5):  # 250 s in all, each use within 60 s of the previous one
        api.clock.advance(50)
        response = await refresh(api, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]


async def test_refresh_family_has_an_absolute_cap(make_api: AppFactory) -> None:
    api = await make_api(refresh_ttl=60, refresh_absolute_ttl=120)
    token = (await api.signup()).refresh_token
    for _ in range(2):
        api.clock.advance(50)
        response = await refresh(api, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
    api.clock.advance(21)  # 121 s after login, 21 s after the last refresh
    assert_invalid_grant(await refresh(api, token))


# -- reuse detection -----------------------------------------------------------------


async def test_reuse_of_rotated_token_revokes_the_whole_family(api: Api) -> None:
    first = await api.signup()
    second = (await refresh(api, first.refresh_token)).json()
    other_session = await api.login()
    assert_invalid_grant(await refresh(api, first.refresh_token))
    assert_invalid_grant(await refresh(api, second["refresh_token"]))
    await assert_access_rejected(api, first.access_token)
    await assert_access_rejected(api, second["access_token"])
    # Only that family: the user's other session lives on.
    await assert_access_accepted(api, other_session.access_token)
    assert (await refresh(api, other_session.refresh_token)).status_code == 200


async def test_reuse_of_token_two_rotations_back_revokes_the_family(api: Api) -> None:
    first = await api.signup()
    second = (await refresh(api, first.refresh_token)).json()
    third = (await refresh(api, second["refresh_token"])).json()
    assert_invalid_grant(await refresh(api, first.refresh_token))
    assert_invalid_grant(await refresh(api, third["refresh_token"]))
    await assert_access_rejected(api, third["access_token"])


# -- roles ---------------------------------------------------------------------------


async def test_role_change_takes_effect_at_next_refresh(api: Api) -> None:
    admin = await api.admin()
    tokens = await api.signup()
    user_id = (await api.client.get("/users/me", headers=tokens.headers)).json()["id"]
    patched = await api.client.patch(
        f"/admin/users/{user_id}", json={"roles": ["user", "editor"]}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    old = await api.client.get("/users/me", headers=tokens.headers)
    assert old.json()["roles"] == ["user"]
    fresh = (await refresh(api, tokens.refresh_token)).json()
    bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    new = await api.client.get("/users/me", headers=bearer)
    assert new.json()["roles"] == ["user", "editor"]


# -- concurrent refreshes (several tabs) ---------------------------------------------


async def race(api: Api, token: str, n: int = 20) -> list[httpx.Response]:
    return list(await asyncio.gather(*(refresh(api, token) for _ in range(n))))


async def test_concurrent_refresh_without_grace_has_exactly_one_winner(api: Api) -> None:
    tokens = await api.signup()
    session = session_of(api, tokens)
    responses = await race(api, tokens.refresh_token)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 19, statuses
    for response in responses:
        if response.status_code == 401:
            assert response.json()["error"] == "invalid_grant"
    rows = [row for row in await token_rows(api) if row["session_id"] == session]
    assert len(rows) == 2  # exactly one rotation


async def test_concurrent_refresh_without_grace_revokes_the_family(api: Api) -> None:
    # With grace 0 the losers present a rotated-away token: that is reuse (API.md), so
    # the winner's new tokens die with the family too.
    tokens = await api.signup()
    responses = await race(api, tokens.refresh_token)
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert_invalid_grant(await refresh(api, winner["refresh_token"]))
    await assert_access_rejected(api, winner["access_token"])
    await assert_access_rejected(api, tokens.access_token)


async def test_concurrent_refresh_within_grace_all_get_the_same_successor(
    make_api: AppFactory,
) -> None:
    api = await make_api(refresh_reuse_grace=10)
    tokens = await api.signup()
    session = session_of(api, tokens)
    responses = await race(api, tokens.refresh_token)
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1
    (successor,) = successors
    assert successor != tokens.refresh_token
    rows = [row for row in await token_rows(api) if row["session_id"] == session]
    assert len(rows) == 2  # exactly one rotation
    for response in responses:
        await assert_access_accepted(api, response.json()["access_token"])
    then = await refresh(api, successor)
    assert then.status_code == 200, then.text


async def test_rotated_token_after_grace_window_is_reuse(make_api: AppFactory) -> None:
    api = await make_api(refresh_reuse_grace=10)
    tokens = await api.signup()
    successor = (await refresh(api, tokens.refresh_token)).json()
    api.clock.advance(5)
    inside = await refresh(api, tokens.refresh_token)
    assert inside.status_code == 200, inside.text
    assert inside.json()["refresh_token"] == successor["refresh_token"]
    api.clock.advance(6)  # 11 s after the rotation
    assert_invalid_grant(await refresh(api, tokens.refresh_token))
    assert_invalid_grant(await refresh(api, successor["refresh_token"]))
    await assert_access_rejected(api, successor["access_token"])


# -- unusable tokens of any shape (issue 13, point 10) --------------------------------


async def test_any_unusable_refresh_token_is_invalid_grant_whatever_its_shape(
    api: Api,
) -> None:
    # An access token (longer than any refresh token), strings the server never issued,
    # long or empty: all are a bad refresh token (API.md), never a 422.
    tokens = await api.signup()
    api.client.cookies.clear()
    for presented in (tokens.access_token, "x" * 257, "A" * 100_000, "", " ", "ü" * 300):
        assert_invalid_grant(await refresh(api, presented))
    assert (await refresh(api, tokens.refresh_token)).status_code == 200


async def test_logout_with_an_access_token_as_refresh_token_is_invalid_grant(api: Api) -> None:
    tokens = await api.signup()
    api.client.cookies.clear()
    response = await api.client.post(
        "/auth/logout", json={"refresh_token": tokens.access_token}
    )
    assert_invalid_grant(response)
    await assert_access_accepted(api, tokens.access_token)


# -- late duplicates inside the grace window (issue 13, point 11) ---------------------


async def rotated_twice(make_api: AppFactory) -> tuple[Api, Tokens, dict[str, Any]]:
    """With a 10 s grace window: T0 -> S1 -> S2. (The app, T0's tokens, S2's response.)"""
    api = await make_api(refresh_reuse_grace=10)
    first = await api.signup()
    api.client.cookies.clear()
    second = (await refresh(api, first.refresh_token)).json()
    third = (await refresh(api, second["refresh_token"])).json()
    return api, first, third


async def test_late_duplicate_inside_grace_is_refused_and_the_family_lives(
    make_api: AppFactory,
) -> None:
    # T0 -> S1 -> S2, then T0 again within the window (a retried request that finally
    # ran): 401, and S2 still works. The caller learns nothing new.
    api, first, third = await rotated_twice(make_api)
    api.clock.advance(5)
    assert_invalid_grant(await refresh(api, first.refresh_token))
    await assert_access_accepted(api, third["access_token"])
    then = await refresh(api, third["refresh_token"])
    assert then.status_code == 200, then.text


async def test_late_duplicate_racing_the_retried_request_never_ends_the_family(
    make_api: AppFactory,
) -> None:
    # The retried request (with the successor S1) and the late one (with T0) at once,
    # several times over: the S1 requests all get the same S2, each T0 request gets
    # either S1 again (ran first) or 401; never a revocation, never a 500.
    api = await make_api(refresh_reuse_grace=10)
    first = await api.signup()
    api.client.cookies.clear()
    second = (await refresh(api, first.refresh_token)).json()["refresh_token"]
    retried = [refresh(api, second) for _ in range(5)]
    late = [refresh(api, first.refresh_token) for _ in range(5)]
    responses = await asyncio.gather(*retried, *late)
    successors = {r.json()["refresh_token"] for r in responses[:5] if r.status_code == 200}
    assert [r.status_code for r in responses[:5]] == [200] * 5, [r.text for r in responses]
    assert len(successors) == 1
    for response in responses[5:]:
        if response.status_code == 200:
            assert response.json()["refresh_token"] == second
        else:
            assert_invalid_grant(response)
    (third,) = successors
    await assert_access_accepted(api, responses[0].json()["access_token"])
    then = await refresh(api, third)
    assert then.status_code == 200, then.text


async def test_rotated_token_after_the_window_is_reuse_even_when_its_successor_was_used(
    make_api: AppFactory,
) -> None:
    api, first, third = await rotated_twice(make_api)
    api.clock.advance(11)
    assert_invalid_grant(await refresh(api, first.refresh_token))
    assert_invalid_grant(await refresh(api, third["refresh_token"]))
    await assert_access_rejected(api, third["access_token"])
