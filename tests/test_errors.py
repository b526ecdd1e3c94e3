"""API.md "Errors": one JSON error shape for every 4xx/5xx, the right codes, RFC 6750
WWW-Authenticate headers, and nothing secret or internal in an error."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from conftest import BASE_URL, PASSWORD, Api


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code


# (method, path, request keyword arguments, status, error code or None when not fixed)
ANONYMOUS_FAILURES: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    ("POST", "/auth/login", {"content": b'{"username": "alice",'}, 400, "invalid_request"),
    ("POST", "/auth/register", {"content": b"username=alice&password=x",
                                "headers": {"content-type": "application/json"}},
     400, "invalid_request"),
    ("POST", "/auth/register", {"content": b"not json at all",
                                "headers": {"content-type": "text/plain"}},
     400, "invalid_request"),
    ("POST", "/auth/login", {"json": {"username": "alice"}}, 422, "invalid_request"),
    ("POST", "/auth/login", {"json": {"username": 5, "password": ["x"]}}, 422,
     "invalid_request"),
    ("POST", "/auth/register", {"json": ["alice", PASSWORD]}, 422, "invalid_request"),
    ("GET", "/no/such/path", {}, 404, "not_found"),
    ("GET", "/posts/999999999", {}, 404, "not_found"),
    ("GET", "/auth/login", {}, 405, None),
    ("DELETE", "/users/me", {}, 405, None),
    ("GET", "/users/me", {}, 401, "invalid_token"),
    ("GET", "/users/me", {"headers": {"Authorization": "Bearer not.a.jwt"}}, 401,
     "invalid_token"),
    ("POST", "/auth/refresh", {"json": {"refresh_token": "nope"}}, 401, "invalid_grant"),
    ("POST", "/auth/login", {"json": {"username": "ghost", "password": PASSWORD}}, 401,
     "invalid_credentials"),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    ANONYMOUS_FAILURES,
    ids=[f"{m} {p} {s}" for m, p, _, s, _ in ANONYMOUS_FAILURES],
)
async def test_every_error_is_json_with_error_and_message(
    api: Api, method: str, path: str, kwargs: dict[str, Any], status: int, code: str | None
) -> None:
    response = await api.client.request(method, path, **kwargs)
    assert_error(response, status, code)


async def test_body_that_is_not_json_is_400_invalid_request(api: Api) -> None:
    response = await api.client.post(
        "/auth/register", content=b"{'username': 'alice'}",
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")


async def test_json_failing_validation_is_422_invalid_request(api: Api) -> None:
    response = await api.client.post(
        "/auth/register", json={"username": "a", "password": PASSWORD}
    )
    assert_error(response, 422, "invalid_request")


async def test_unknown_path_is_404_not_found(api: Api) -> None:
    assert_error(await api.client.get("/nothing-here"), 404, "not_found")


async def test_wrong_method_is_405_with_json_error_and_allow_header(api: Api) -> None:
    response = await api.client.put("/auth/login", json={})
    assert_error(response, 405)
    assert "POST" in response.headers["allow"]


PROTECTED: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/users/me", {}),
    ("GET", "/auth/check", {}),
    ("GET", "/auth/sessions", {}),
    ("DELETE", "/auth/sessions/00000000-0000-4000-8000-000000000000", {}),
    ("POST", "/auth/logout", {}),
    ("POST", "/auth/logout-all", {}),
    ("POST", "/auth/password",
     {"json": {"current_password": PASSWORD, "new_password": "staple-quantum-42"}}),
    ("GET", "/admin/users", {}),
    ("POST", "/posts", {"json": {"title": "t", "content": "c"}}),
]
PROTECTED_IDS = [f"{m} {p}" for m, p, _ in PROTECTED]


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED, ids=PROTECTED_IDS)
async def test_missing_token_is_401_with_bearer_challenge_without_error(
    api: Api, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = await api.client.request(method, path, **kwargs)
    assert_error(response, 401, "invalid_token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert "error=" not in challenge


def tampered(token: str) -> str:
    """The token with its roles raised to admin and the signature left as it was."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["user", "admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED, ids=PROTECTED_IDS)
@pytest.mark.parametrize("kind", ["garbage", "tampered"])
async def test_bad_token_is_401_with_invalid_token_challenge(
    api: Api, method: str, path: str, kwargs: dict[str, Any], kind: str
) -> None:
    token = "garbage" if kind == "garbage" else tampered((await api.signup()).access_token)
    api.client.cookies.clear()
    response = await api.client.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )
    assert_error(response, 401, "invalid_token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert 'error="invalid_token"' in challenge


async def test_non_admin_on_admin_route_is_403_insufficient_role(api: Api) -> None:
    tokens = await api.signup()
    response = await api.client.get("/admin/users", headers=tokens.headers)
    assert_error(response, 403, "insufficient_role")


async def test_token_in_query_string_is_not_accepted(api: Api) -> None:
    tokens = await api.signup()
    response = await api.client.get("/users/me", params={"access_token": tokens.access_token})
    assert_error(response, 401, "invalid_token")


SECRET = "Uncommon-Sekrit-7f3a9c"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/register", {"username": "alice", "password": SECRET * 100}),
        ("/auth/register", {"username": "a", "password": SECRET}),
        ("/auth/register", {"username": "alice", "password": SECRET[:7]}),
        ("/auth/register", {"username": "alice", "password": SECRET, "email": 7}),
        ("/auth/login", {"username": "alice", "password": SECRET * 100}),
        ("/auth/login", {"username": "", "password": SECRET}),
    ],
    ids=["long-password", "bad-username", "short-password", "bad-email", "login-long",
         "login-no-username"],
)
async def test_validation_error_never_echoes_the_password(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    response = await api.client.post(path, json=body)
    assert_error(response, 422, "invalid_request")
    assert SECRET[:7] not in response.text


async def test_password_change_validation_never_echoes_the_passwords(api: Api) -> None:
    tokens = await api.signup()
    response = await api.client.post(
        "/auth/password", headers=tokens.headers,
        json={"current_password": PASSWORD, "new_password": SECRET * 100},
    )
    assert_error(response, 422, "invalid_request")
    assert SECRET[:7] not in response.text
    assert PASSWORD not in response.text


async def test_unexpected_exception_is_500_internal_error_without_stack_trace(
    api: Api,
) -> None:
    async def explode() -> None:
        raise RuntimeError("db password is hunter2 at /srv/app/secret.py line 42")

    api.app.add_api_route("/explode", explode)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.get("/explode")
    assert_error(response, 500, "internal_error")
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret.py"):
        assert leak not in response.text
