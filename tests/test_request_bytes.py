"""Bytes that are not what they seem (issue 13, point 5; web/wellformed.py, web/models.py):
a JSON body must be I-JSON (RFC 7493): UTF-8 only, each member name once, no lone
surrogates, no NaN, or it is 400 ``invalid_request``; U+0000 in any string field is 422
and in a path id 404, on SQLite and PostgreSQL alike, and never a 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from conftest import PASSWORD, Api, AppFactory, Tokens

JSON = {"Content-Type": "application/json"}
LOGIN = {"username": "alice", "password": PASSWORD}


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def post_raw(api: Api, path: str, body: bytes, headers: dict[str, str] | None = None
                   ) -> Any:
    return await api.client.post(path, content=body, headers={**JSON, **(headers or {})})


def assert_400(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-32-be", "utf-8-sig"])
async def test_a_body_that_is_not_plain_utf8_is_400(
    api: Api, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    await api.register("alice")
    body = json.dumps(LOGIN).encode(encoding)
    assert_400(await post_raw(api, "/auth/login", body))
    registration = json.dumps({"username": "bob", "password": PASSWORD}).encode(encoding)
    assert_400(await post_raw(api, "/auth/register", registration))
    # The same content as UTF-8 is served: only the encoding was refused.
    assert (await post_raw(api, "/auth/login", json.dumps(LOGIN).encode())).status_code == 200
    assert (await post_raw(api, "/auth/login", json.dumps(
        {"username": "bob", "password": PASSWORD}).encode())).status_code == 401
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "alice", "password": "\xff\xfe"}',  # not UTF-8 at all
        b'{"username": "alice", "password": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"username": NaN, "password": "x"}',
        b'{"username": Infinity, "password": "x"}',
        b'{"username": "alice", "password": ' + b"1" * 5000 + b"}",
        b"[" * 100_000,
    ],
    ids=["invalid-utf8", "cesu-surrogate", "nan", "infinity", "huge-number", "deep"],
)
async def test_what_json_loads_would_mishandle_is_400(
    api: Api, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert_400(await post_raw(api, "/auth/login", body))
    no_errors_logged(caplog)


async def test_duplicate_member_names_are_400_at_any_depth(api: Api) -> None:
    await api.register("alice")
    twice = b'{"username": "mallory", "username": "alice", "password": "%s"}' % PASSWORD.encode()
    assert_400(await post_raw(api, "/auth/login", twice))
    tokens = await api.login()
    nested = b'{"title": "t", "content": "c", "extra": {"k": 1, "k": 2}}'
    assert_400(await post_raw(api, "/posts", nested, tokens.headers))
    assert (await api.client.get("/posts")).json() == []


async def test_a_lone_surrogate_is_400_and_never_reaches_the_database(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = await api.signup()
    for field in ("title", "content"):
        post = {"title": "t", "content": "c", field: "bad \\ud800 text"}
        body = json.dumps(post).replace("\\\\", "\\").encode()
        assert b"\\ud800" in body
        assert_400(await post_raw(api, "/posts", body, tokens.headers))
    assert (await api.client.get("/posts")).json() == []
    no_errors_logged(caplog)


# -- U+0000: 422 in every string field, 404 in every path id -------------------------------


async def signed_in(api: Api) -> tuple[Tokens, str]:
    tokens = await api.admin("root")
    post = await api.client.post("/posts", json={"title": "t", "content": "c"},
                                 headers=tokens.headers)
    assert post.status_code == 201
    return tokens, post.json()["id"]


NUL_BODIES = [
    ("POST", "/auth/login", {"username": "al\x00ice", "password": PASSWORD}),
    ("POST", "/auth/login", {"username": "root", "password": PASSWORD + "\x00"}),
    ("POST", "/auth/register", {"username": "bob", "password": PASSWORD + "\x00x"}),
    ("POST", "/auth/register", {"username": "b\x00b", "password": PASSWORD}),
    ("POST", "/auth/register", {"username": "bob", "password": PASSWORD,
                                "email": "b\x00b@example.com"}),
    ("POST", "/auth/password", {"current_password": PASSWORD + "\x00",
                                "new_password": "staple-quantum-lantern-42"}),
    ("POST", "/auth/password", {"current_password": PASSWORD,
                                "new_password": "staple-quantum\x00lantern-42"}),
    ("POST", "/posts", {"title": "a\x00b", "content": "c"}),
    ("POST", "/posts", {"title": "t", "content": "a\x00b"}),
    ("PATCH", "/posts/{post}", {"title": "a\x00b"}),
    ("PATCH", "/posts/{post}", {"content": "a\x00b"}),
    ("PATCH", "/admin/users/{user}", {"roles": ["user", "ad\x00min"]}),
]


async def test_u0000_in_a_refresh_token_is_invalid_grant(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A refresh token is opaque: any string the server never issued is invalid_grant,
    # whatever its shape (API.md "Errors"; issue 13 point 10), U+0000 included, and it
    # never reaches a query.
    api = await make_api()
    tokens = await api.signup("alice")
    for path in ("/auth/refresh", "/auth/logout"):
        body = {"refresh_token": tokens.refresh_token + "\x00"}
        response = await api.client.post(path, json=body)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "invalid_grant"
        assert "\x00" not in response.text
    # The real token still works: the malformed one touched nothing.
    again = await api.client.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert again.status_code == 200
    no_errors_logged(caplog)


async def test_u0000_in_any_string_field_is_422(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    api = await make_api()
    tokens, post_id = await signed_in(api)
    user_id = (await api.client.get("/users/me", headers=tokens.headers)).json()["id"]
    for method, path, body in NUL_BODIES:
        target = path.format(post=post_id, user=user_id)
        response = await api.client.request(method, target, json=body, headers=tokens.headers)
        assert response.status_code == 422, (method, path, body, response.text)
        assert response.json()["error"] == "invalid_request"
        assert "\x00" not in response.text
    assert (await api.client.get("/users/me", headers=tokens.headers)).status_code == 200
    no_errors_logged(caplog)


PATH_IDS = [
    ("DELETE", "/auth/sessions/{nul}"),
    ("PATCH", "/admin/users/{nul}"),
    ("DELETE", "/admin/users/{nul}"),
    ("GET", "/posts/{nul}"),
    ("PATCH", "/posts/{nul}"),
    ("DELETE", "/posts/{nul}"),
]


async def test_u0000_in_any_path_id_is_404(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    api = await make_api()
    tokens, post_id = await signed_in(api)
    for method, path in PATH_IDS:
        for nul in ("%00", "x%00", f"{post_id}%00"):
            body = {"roles": ["user"]} if "admin" in path else {"title": "x"}
            response = await api.client.request(
                method, path.format(nul=nul), headers=tokens.headers,
                json=body if method == "PATCH" else None,
            )
            assert response.status_code == 404, (method, path, nul, response.text)
            assert response.json()["error"] == "not_found"
    assert (await api.client.get(f"/posts/{post_id}")).status_code == 200
    no_errors_logged(caplog)
