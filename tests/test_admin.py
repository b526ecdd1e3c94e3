"""API.md "Roles and administration": listing users, changing roles, deleting users.

(What POST /admin/keys/rotate does is tested with the keys; only its guard is here.)
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from conftest import PASSWORD, Api

# Every admin route this file covers, with a body that would be valid for an admin, so
# that a refusal can only come from authentication or authorization.
ADMIN_ROUTES = [
    ("GET", "/admin/users", None),
    ("PATCH", "/admin/users/{id}", {"roles": ["user", "admin"]}),
    ("DELETE", "/admin/users/{id}", None),
    ("POST", "/admin/keys/rotate", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ADMIN_ROUTES]


async def call(
    api: Api, method: str, path: str, body: Any, user_id: str, headers: dict[str, str]
) -> Any:
    return await api.client.request(
        method, path.format(id=user_id), json=body, headers=headers
    )


async def usernames(api: Api, admin_headers: dict[str, str]) -> list[str]:
    response = await api.client.get("/admin/users", headers=admin_headers)
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()]


async def delete(api: Api, user_id: str, admin_headers: dict[str, str]) -> None:
    response = await api.client.delete(f"/admin/users/{user_id}", headers=admin_headers)
    assert response.status_code == 204, response.text


# -- authentication and authorization, on every route -----------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=ROUTE_IDS)
async def test_admin_route_without_token_is_401(
    api: Api, method: str, path: str, body: Any
) -> None:
    victim = await api.register("victim")
    response = await call(api, method, path, body, victim["id"], {})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=ROUTE_IDS)
async def test_admin_route_with_bad_token_is_401_invalid_token(
    api: Api, method: str, path: str, body: Any
) -> None:
    victim = await api.register("victim")
    headers = {"Authorization": "Bearer not.a.token"}
    response = await call(api, method, path, body, victim["id"], headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    www = response.headers["WWW-Authenticate"]
    assert www.startswith("Bearer") and 'error="invalid_token"' in www


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=ROUTE_IDS)
async def test_admin_route_for_plain_user_is_403_insufficient_role(
    api: Api, method: str, path: str, body: Any
) -> None:
    victim = await api.register("victim")
    tokens = await api.signup("mallory")
    keys = (await api.client.get("/.well-known/jwks.json")).json()
    response = await call(api, method, path, body, victim["id"], tokens.headers)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_role"
    # Nothing happened to the target.
    assert (await api.client.get("/.well-known/jwks.json")).json() == keys
    admin = await api.admin()
    listed = await api.client.get("/admin/users", headers=admin.headers)
    by_name = {u["username"]: u for u in listed.json()}
    assert by_name["victim"]["roles"] == ["user"]
    assert by_name["mallory"]["roles"] == ["user"]


# -- GET /admin/users -------------------------------------------------------------------


async def test_list_users_returns_every_user_with_id_username_roles_created_at(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin("root")
    response = await api.client.get("/admin/users", headers=admin.headers)
    assert response.status_code == 200
    users = response.json()
    assert isinstance(users, list)
    by_name = {u["username"]: u for u in users}
    assert set(by_name) == {"alice", "root"}
    assert by_name["alice"]["id"] == alice["id"]
    assert by_name["alice"]["roles"] == ["user"]
    assert sorted(by_name["root"]["roles"]) == ["admin", "user"]
    for user in users:
        assert {"id", "username", "roles", "created_at"} <= set(user)
        assert not any("password" in key for key in user)
        assert datetime.fromisoformat(user["created_at"]).tzinfo is not None


async def test_list_users_pages_with_limit_and_offset(api: Api) -> None:
    admin = await api.admin("root")
    for name in ("user1", "user2", "user3", "user4"):
        await api.register(name)
    pages = []
    for offset in (0, 2, 4):
        response = await api.client.get(
            "/admin/users", params={"limit": 2, "offset": offset}, headers=admin.headers
        )
        assert response.status_code == 200
        pages.append([u["id"] for u in response.json()])
    assert [len(page) for page in pages] == [2, 2, 1]
    seen = [user_id for page in pages for user_id in page]
    assert len(set(seen)) == 5
    everyone = await api.client.get("/admin/users", headers=admin.headers)
    assert {u["id"] for u in everyone.json()} == set(seen)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": "many"}, {"offset": -1}])
async def test_list_users_with_bad_paging_is_422(api: Api, params: dict[str, Any]) -> None:
    admin = await api.admin()
    response = await api.client.get("/admin/users", params=params, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# -- PATCH /admin/users/{id} ------------------------------------------------------------


async def test_set_roles_returns_the_updated_user(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    response = await api.client.patch(
        f"/admin/users/{alice['id']}", json={"roles": ["user", "editor"]}, headers=admin.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alice["id"]
    assert body["username"] == "alice"
    assert body["roles"] == ["user", "editor"]
    assert "created_at" in body
    listed = await api.client.get("/admin/users", headers=admin.headers)
    assert {u["username"]: u["roles"] for u in listed.json()}["alice"] == ["user", "editor"]


async def test_granted_role_takes_effect_at_next_refresh(api: Api) -> None:
    alice = await api.signup("alice")
    me = await api.client.get("/users/me", headers=alice.headers)
    admin = await api.admin()
    granted = await api.client.patch(
        f"/admin/users/{me.json()['id']}", json={"roles": ["user", "admin"]}, headers=admin.headers
    )
    assert granted.status_code == 200
    refreshed = await api.client.post(
        "/auth/refresh", json={"refresh_token": alice.refresh_token}
    )
    assert refreshed.status_code == 200
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert sorted((await api.client.get("/users/me", headers=headers)).json()["roles"]) == [
        "admin", "user",
    ]
    assert (await api.client.get("/admin/users", headers=headers)).status_code == 200


async def test_removed_admin_role_takes_effect_at_next_refresh(api: Api) -> None:
    boss = await api.admin("boss")
    me = await api.client.get("/users/me", headers=boss.headers)
    root = await api.admin("root")
    demoted = await api.client.patch(
        f"/admin/users/{me.json()['id']}", json={"roles": ["user"]}, headers=root.headers
    )
    assert demoted.status_code == 200
    refreshed = await api.client.post("/auth/refresh", json={"refresh_token": boss.refresh_token})
    assert refreshed.status_code == 200
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    response = await api.client.get("/admin/users", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_role"


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "nobody"])
async def test_set_roles_of_unknown_user_is_404(api: Api, user_id: str) -> None:
    admin = await api.admin()
    response = await api.client.patch(
        f"/admin/users/{user_id}", json={"roles": ["user"]}, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [{"roles": [""]}, {"roles": "admin"}, {"roles": [1]}, {"roles": None}, {}, {"roles": ["a b"]}],
    ids=["empty-role", "not-a-list", "not-strings", "null", "missing", "space-in-role"],
)
async def test_set_roles_with_bad_roles_is_422(api: Api, body: dict[str, Any]) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    response = await api.client.patch(
        f"/admin/users/{alice['id']}", json=body, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    listed = await api.client.get("/admin/users", headers=admin.headers)
    assert {u["username"]: u["roles"] for u in listed.json()}["alice"] == ["user"]


# -- DELETE /admin/users/{id} -----------------------------------------------------------


async def test_delete_user_is_204_and_removes_the_user(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    response = await api.client.delete(f"/admin/users/{alice['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "alice" not in await usernames(api, admin.headers)


async def test_deleted_users_access_token_is_rejected_at_once(api: Api) -> None:
    alice = await api.signup("alice")
    user_id = (await api.client.get("/users/me", headers=alice.headers)).json()["id"]
    admin = await api.admin()
    await delete(api, user_id, admin.headers)
    response = await api.client.get("/users/me", headers=alice.headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_deleted_users_refresh_token_is_invalid_grant(api: Api) -> None:
    alice = await api.signup("alice")
    user_id = (await api.client.get("/users/me", headers=alice.headers)).json()["id"]
    admin = await api.admin()
    await delete(api, user_id, admin.headers)
    response = await api.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"


async def test_deleted_user_cannot_log_in(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    await delete(api, alice["id"], admin.headers)
    response = await api.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


async def test_deleted_username_can_be_registered_again(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    await delete(api, alice["id"], admin.headers)
    again = await api.register("alice")
    assert again["id"] != alice["id"]


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "nobody"])
async def test_delete_unknown_user_is_404(api: Api, user_id: str) -> None:
    admin = await api.admin()
    response = await api.client.delete(f"/admin/users/{user_id}", headers=admin.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_delete_same_user_twice_is_404_the_second_time(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    first = await api.client.delete(f"/admin/users/{alice['id']}", headers=admin.headers)
    second = await api.client.delete(f"/admin/users/{alice['id']}", headers=admin.headers)
    assert (first.status_code, second.status_code) == (204, 404)
    assert second.json()["error"] == "not_found"
