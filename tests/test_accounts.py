"""API.md "Accounts": register, login and its limits, the access token, logout, sessions,
password change, /users/me and the forward-auth check. (/auth/refresh: test_refresh.py.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import event

from conftest import BASE_URL, PASSWORD, Api, AppFactory, Tokens

NEW_PASSWORD = "staple-quantum-lantern-42"
COOKIE_ATTRIBUTES = "HttpOnly; Secure; SameSite=Strict; Path=/auth"


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


def claims_of(tokens: Tokens) -> dict[str, Any]:
    return jwt.decode(tokens.access_token, options={"verify_signature": False})


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": refresh_token})


async def login_on(client: httpx.AsyncClient, username: str = "alice",
                   password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"username": username, "password": password})


async def change_password(api: Api, tokens: Tokens, current: str, new: str) -> httpx.Response:
    return await api.client.post("/auth/password", headers=tokens.headers,
                                 json={"current_password": current, "new_password": new})


@pytest.fixture
async def phone(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """A second device of the same user: its own cookie jar and User-Agent."""
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers={"User-Agent": "phone/1.0"}
    ) as client:
        yield client


async def phone_login(phone: httpx.AsyncClient, username: str = "alice") -> Tokens:
    response = await login_on(phone, username)
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(body["access_token"], body["refresh_token"], body)


async def test_register_answers_201_with_id_username_and_user_role(api: Api) -> None:
    response = await api.client.post("/auth/register", json={"username": "alice",
                                                              "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "roles"}
    assert isinstance(body["id"], str) and body["id"]
    assert body["username"] == "alice"
    assert body["roles"] == ["user"]


async def test_register_accepts_an_optional_email_and_does_not_echo_it(api: Api) -> None:
    response = await api.client.post(
        "/auth/register",
        json={"username": "alice", "password": PASSWORD, "email": "alice@example.com"},
    )
    assert response.status_code == 201
    assert set(response.json()) == {"id", "username", "roles"}


async def test_register_taken_username_is_409_conflict(api: Api) -> None:
    await api.register("alice")
    response = await api.client.post("/auth/register", json={"username": "alice",
                                                              "password": NEW_PASSWORD})
    assert_error(response, 409, "conflict")


@pytest.mark.parametrize(
    ("username", "password"),
    [("abc", PASSWORD), ("a" * 64, PASSWORD), ("A.b_c-9", PASSWORD),
     ("alice", "Zq9-kT2x"), ("alice", "Zq9-kT2x" * 128)],
    ids=["username-3", "username-64", "username-charset", "password-8", "password-1024"],
)
async def test_register_accepts_usernames_and_passwords_at_the_limits(
    api: Api, username: str, password: str
) -> None:
    assert (await api.register(username, password))["username"] == username
    await api.login(username, password)


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "ab"},
        {"username": "a" * 65},
        {"username": "bad name"},
        {"username": "bad/name"},
        {"username": "ålice"},
        {"username": ""},
        {"password": "Zq9-kT2"},  # 7 characters
        {"password": "Zq9-kT2x" * 128 + "y"},  # 1025 characters
        {"password": "password123"},
        {"password": "qwertyuiop"},
        {"email": "not-an-email"},
    ],
    ids=lambda fields: "-".join(f"{k}:{str(v)[:12]}" for k, v in fields.items()),
)
async def test_register_invalid_input_is_422_invalid_request(
    api: Api, fields: dict[str, str]
) -> None:
    response = await api.client.post(
        "/auth/register", json={"username": "alice", "password": PASSWORD, **fields}
    )
    assert_error(response, 422, "invalid_request")


async def test_login_answers_token_response_refresh_cookie_and_no_store(api: Api) -> None:
    await api.register()
    response = await login_on(api.client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 43  # 256 bits in base64url
    assert response.headers.get_list("set-cookie") == [
        f"refresh_token={body['refresh_token']}; {COOKIE_ATTRIBUTES}; Max-Age=604800"
    ]
    assert response.headers["cache-control"] == "no-store"


async def test_login_failure_is_the_same_401_for_unknown_user_and_wrong_password(
    api: Api,
) -> None:
    await api.register()
    wrong = await login_on(api.client, "alice", "not-" + PASSWORD)
    unknown = await login_on(api.client, "nobody", PASSWORD)
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


async def test_login_is_rate_limited_after_5_failures_even_with_the_right_password(
    api: Api,
) -> None:
    await api.register()
    for _ in range(5):
        assert_error(await login_on(api.client, password="wrong-password"), 401,
                     "invalid_credentials")
    limited = await login_on(api.client)
    assert_error(limited, 429, "rate_limited")
    retry_after = int(limited.headers["retry-after"])
    assert retry_after >= 1
    api.clock.advance(retry_after)
    assert (await login_on(api.client)).status_code == 200


async def test_login_limit_is_per_account_and_per_address(api: Api) -> None:
    await api.register("alice")
    await api.register("bob")
    for _ in range(5):
        await login_on(api.client, password="wrong-password")
    assert (await login_on(api.client)).status_code == 429
    assert (await login_on(api.client, "bob")).status_code == 200
    elsewhere = httpx.ASGITransport(app=api.app, client=("203.0.113.7", 4242))
    async with httpx.AsyncClient(transport=elsewhere, base_url=BASE_URL) as other:
        assert (await login_on(other)).status_code == 200


async def test_successful_logins_do_not_count_toward_the_limit(api: Api) -> None:
    await api.register()
    for _ in range(6):
        await api.login()
    for _ in range(4):
        assert (await login_on(api.client, password="wrong-password")).status_code == 401
    assert (await login_on(api.client)).status_code == 200


async def test_access_token_header_and_claims(api: Api) -> None:
    user = await api.register()
    tokens = await api.login()
    header = jwt.get_unverified_header(tokens.access_token)
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")
    assert isinstance(header["kid"], str) and header["kid"]
    claims = claims_of(tokens)
    assert {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "roles"} <= set(claims)
    assert claims["iss"] == "https://jwtauth.test"
    assert claims["sub"] == user["id"]
    assert claims["aud"] == api.service.settings.audience
    assert claims["exp"] - claims["iat"] == 900
    assert claims["iat"] <= claims["nbf"] < claims["exp"]
    assert claims["roles"] == ["user"]
    sessions = (await api.client.get("/auth/sessions", headers=tokens.headers)).json()
    assert [s["id"] for s in sessions if s["current"]] == [claims["sid"]]
    assert claims_of(await api.login())["jti"] != claims["jti"]


async def test_access_token_holds_no_password_or_email(api: Api) -> None:
    response = await api.client.post(
        "/auth/register",
        json={"username": "alice", "password": PASSWORD, "email": "alice@example.com"},
    )
    assert response.status_code == 201
    claims = claims_of(await api.login())
    text = json.dumps(claims)
    assert PASSWORD not in text
    assert "alice@example.com" not in text
    assert not {"password", "password_hash", "email"} & set(claims)


async def test_access_token_expires_after_15_minutes_plus_clock_skew(api: Api) -> None:
    tokens = await api.signup()
    api.clock.advance(900 + 29)
    assert (await api.client.get("/users/me", headers=tokens.headers)).status_code == 200
    api.clock.advance(2)
    response = await api.client.get("/users/me", headers=tokens.headers)
    assert_error(response, 401, "invalid_token")


async def test_logout_with_bearer_ends_only_this_session(
    api: Api, phone: httpx.AsyncClient
) -> None:
    tokens = await api.signup()
    other = await phone_login(phone)
    response = await api.client.post("/auth/logout", headers=tokens.headers)
    assert response.status_code == 204
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert_error(await api.client.get("/users/me", headers=tokens.headers), 401, "invalid_token")
    assert_error(await refresh(api.client, tokens.refresh_token), 401, "invalid_grant")
    assert (await phone.get("/users/me", headers=other.headers)).status_code == 200


async def test_logout_with_refresh_cookie_alone_ends_the_session_and_clears_the_cookie(
    api: Api,
) -> None:
    tokens = await api.signup()
    assert api.client.cookies.get("refresh_token") == tokens.refresh_token
    response = await api.client.post("/auth/logout")
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("refresh_token=;")
    assert {"Path=/auth", "Max-Age=0"} <= {part.strip() for part in cookie.split(";")}
    assert "refresh_token" not in api.client.cookies
    assert_error(await api.client.get("/users/me", headers=tokens.headers), 401, "invalid_token")
    assert_error(await refresh(api.client, tokens.refresh_token), 401, "invalid_grant")


async def test_logout_without_token_or_cookie_is_401(api: Api) -> None:
    response = await api.client.post("/auth/logout")
    assert_error(response, 401, "invalid_token")


async def test_logout_all_ends_every_session_of_the_user_only(
    api: Api, phone: httpx.AsyncClient
) -> None:
    laptop = await api.signup("alice")
    other = await phone_login(phone)
    bob = await api.signup("bob")
    response = await api.client.post("/auth/logout-all", headers=laptop.headers)
    assert response.status_code == 204
    for tokens in (laptop, other):
        assert_error(await api.client.get("/users/me", headers=tokens.headers), 401,
                     "invalid_token")
        assert_error(await refresh(api.client, tokens.refresh_token), 401, "invalid_grant")
    assert (await api.client.get("/users/me", headers=bob.headers)).status_code == 200
    assert (await refresh(api.client, bob.refresh_token)).status_code == 200


async def test_sessions_lists_the_users_sessions_marking_the_current_one(
    api: Api, phone: httpx.AsyncClient
) -> None:
    laptop = await api.signup("alice")
    other = await phone_login(phone)
    await api.signup("bob")
    response = await api.client.get("/auth/sessions", headers=laptop.headers)
    assert response.status_code == 200
    sessions = {s["id"]: s for s in response.json()}
    assert set(sessions) == {claims_of(laptop)["sid"], claims_of(other)["sid"]}
    for session in sessions.values():
        assert set(session) == {"id", "created_at", "last_used_at", "user_agent", "current"}
        assert datetime.fromisoformat(session["created_at"]).tzinfo is not None
        assert datetime.fromisoformat(session["last_used_at"]).tzinfo is not None
    mine, theirs = sessions[claims_of(laptop)["sid"]], sessions[claims_of(other)["sid"]]
    assert mine["current"] is True and theirs["current"] is False
    assert mine["user_agent"] == api.client.headers["user-agent"]
    assert theirs["user_agent"] == "phone/1.0"


async def test_delete_session_ends_that_session(api: Api, phone: httpx.AsyncClient) -> None:
    laptop = await api.signup()
    other = await phone_login(phone)
    sid = claims_of(other)["sid"]
    response = await api.client.delete(f"/auth/sessions/{sid}", headers=laptop.headers)
    assert response.status_code == 204
    assert_error(await phone.get("/users/me", headers=other.headers), 401, "invalid_token")
    assert_error(await refresh(phone, other.refresh_token), 401, "invalid_grant")
    assert (await api.client.get("/users/me", headers=laptop.headers)).status_code == 200
    listed = (await api.client.get("/auth/sessions", headers=laptop.headers)).json()
    assert [s["id"] for s in listed] == [claims_of(laptop)["sid"]]


async def test_delete_unknown_session_is_404(api: Api) -> None:
    tokens = await api.signup()
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await api.client.delete(f"/auth/sessions/{unknown}", headers=tokens.headers)
    assert_error(response, 404, "not_found")


async def test_delete_another_users_session_is_404_and_leaves_it_alive(
    api: Api, phone: httpx.AsyncClient
) -> None:
    alice = await api.signup("alice")
    await api.register("bob")
    bob = await phone_login(phone, "bob")
    sid = claims_of(bob)["sid"]
    response = await api.client.delete(f"/auth/sessions/{sid}", headers=alice.headers)
    assert_error(response, 404, "not_found")
    assert (await phone.get("/users/me", headers=bob.headers)).status_code == 200
    assert (await refresh(phone, bob.refresh_token)).status_code == 200


async def test_password_change_revokes_other_sessions_and_keeps_this_one(
    api: Api, phone: httpx.AsyncClient
) -> None:
    laptop = await api.signup()
    other = await phone_login(phone)
    response = await change_password(api, laptop, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204
    assert (await api.client.get("/users/me", headers=laptop.headers)).status_code == 200
    assert (await refresh(api.client, laptop.refresh_token)).status_code == 200
    assert_error(await phone.get("/users/me", headers=other.headers), 401, "invalid_token")
    assert_error(await refresh(phone, other.refresh_token), 401, "invalid_grant")


async def test_password_change_makes_the_new_password_the_only_one(api: Api) -> None:
    tokens = await api.signup()
    assert (await change_password(api, tokens, PASSWORD, NEW_PASSWORD)).status_code == 204
    assert (await login_on(api.client, password=NEW_PASSWORD)).status_code == 200
    assert_error(await login_on(api.client, password=PASSWORD), 401, "invalid_credentials")


async def test_password_change_with_wrong_current_password_is_403(api: Api) -> None:
    tokens = await api.signup()
    response = await change_password(api, tokens, "not-" + PASSWORD, NEW_PASSWORD)
    assert_error(response, 403, "invalid_credentials")
    assert (await login_on(api.client, password=PASSWORD)).status_code == 200


@pytest.mark.parametrize("new_password", ["short", "password123", "x" * 1025])
async def test_password_change_to_a_weak_password_is_422(api: Api, new_password: str) -> None:
    tokens = await api.signup()
    response = await change_password(api, tokens, PASSWORD, new_password)
    assert_error(response, 422, "invalid_request")
    assert (await login_on(api.client, password=PASSWORD)).status_code == 200


async def test_users_me_answers_id_username_and_roles(api: Api) -> None:
    user = await api.register()
    tokens = await api.login()
    response = await api.client.get("/users/me", headers=tokens.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["username"], body["roles"]) == (user["id"], "alice", ["user"])


async def test_auth_check_answers_204_with_user_id_and_comma_separated_roles(
    api: Api,
) -> None:
    user = await api.register()
    response = await api.client.get("/auth/check", headers=(await api.login()).headers)
    assert response.status_code == 204
    assert response.headers["x-auth-user-id"] == user["id"]
    assert response.headers["x-auth-roles"] == "user"
    admin = await api.client.get("/auth/check", headers=(await api.admin("root")).headers)
    assert sorted(admin.headers["x-auth-roles"].split(",")) == ["admin", "user"]


async def test_protected_requests_do_no_database_query(make_api: AppFactory) -> None:
    # A long poll interval keeps the background revocation follower out of the count.
    api = await make_api(revocation_poll_interval=60)
    tokens = await api.signup()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = api.server.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        me = await api.client.get("/users/me", headers=tokens.headers)
        check = await api.client.get("/auth/check", headers=tokens.headers)
        assert (me.status_code, check.status_code) == (200, 204)
        assert statements == []
        # The counter does see queries: listing sessions reads the database.
        assert (await api.client.get("/auth/sessions", headers=tokens.headers)).status_code == 200
        assert statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
