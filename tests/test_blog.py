"""API.md "Blog": the demo resource, protected with the public library only."""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import jwtauth.server.blog

from conftest import Api, Tokens

POST_KEYS = {"id", "title", "content", "author", "created_at"}


async def create_post(
    api: Api, tokens: Tokens, title: str = "Hello", content: str = "First post."
) -> dict[str, Any]:
    response = await api.client.post(
        "/posts", json={"title": title, "content": content}, headers=tokens.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def user_id(api: Api, tokens: Tokens) -> str:
    return (await api.client.get("/users/me", headers=tokens.headers)).json()["id"]


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- GET /posts -------------------------------------------------------------------------


async def test_list_posts_is_public_and_empty_at_first(api: Api) -> None:
    response = await api.client.get("/posts")
    assert response.status_code == 200
    assert response.json() == []


async def test_list_posts_shows_posts_newest_first_with_author(api: Api) -> None:
    alice = await api.signup("alice")
    first = await create_post(api, alice, "one")
    second = await create_post(api, alice, "two")
    third = await create_post(api, alice, "three")
    response = await api.client.get("/posts")
    assert response.status_code == 200
    posts = response.json()
    assert [p["id"] for p in posts] == [third["id"], second["id"], first["id"]]
    assert posts[0] == third
    for post in posts:
        assert set(post) == POST_KEYS
        assert post["author"] == {"id": await user_id(api, alice), "username": "alice"}


async def test_list_posts_returns_20_by_default(api: Api) -> None:
    alice = await api.signup("alice")
    for n in range(21):
        await create_post(api, alice, f"post {n}")
    response = await api.client.get("/posts")
    assert response.status_code == 200
    titles = [p["title"] for p in response.json()]
    assert titles == [f"post {n}" for n in range(20, 0, -1)]


async def test_list_posts_pages_with_limit_and_offset(api: Api) -> None:
    alice = await api.signup("alice")
    for n in range(5):
        await create_post(api, alice, f"post {n}")
    first = await api.client.get("/posts", params={"limit": 2})
    second = await api.client.get("/posts", params={"limit": 2, "offset": 2})
    last = await api.client.get("/posts", params={"limit": 100, "offset": 4})
    assert [p["title"] for p in first.json()] == ["post 4", "post 3"]
    assert [p["title"] for p in second.json()] == ["post 2", "post 1"]
    assert [p["title"] for p in last.json()] == ["post 0"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}],
    ids=["limit-0", "limit-101", "limit-not-a-number", "offset-negative"],
)
async def test_list_posts_with_bad_paging_is_422(api: Api, params: dict[str, Any]) -> None:
    response = await api.client.get("/posts", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# -- POST /posts ------------------------------------------------------------------------


async def test_create_post_without_token_is_401(api: Api) -> None:
    response = await api.client.post("/posts", json={"title": "Hi", "content": "there"})
    assert_unauthenticated(response)
    assert (await api.client.get("/posts")).json() == []


async def test_create_post_with_bad_token_is_401(api: Api) -> None:
    response = await api.client.post(
        "/posts", json={"title": "Hi", "content": "there"},
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert_unauthenticated(response)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_create_post_is_201_with_the_post(api: Api) -> None:
    alice = await api.signup("alice")
    response = await api.client.post(
        "/posts", json={"title": "Hello", "content": "First post."}, headers=alice.headers
    )
    assert response.status_code == 201
    post = response.json()
    assert set(post) == POST_KEYS
    assert isinstance(post["id"], int)
    assert post["title"] == "Hello"
    assert post["content"] == "First post."
    assert post["author"] == {"id": await user_id(api, alice), "username": "alice"}
    assert datetime.fromisoformat(post["created_at"]).tzinfo is not None


async def test_create_post_trims_the_title(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice, "  Hello world \t\n", "  body stays  ")
    assert post["title"] == "Hello world"
    assert post["content"] == "  body stays  "


async def test_create_post_accepts_the_longest_title_and_content(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice, " " + "t" * 200 + " ", "c" * 100_000)
    assert post["title"] == "t" * 200
    assert len(post["content"]) == 100_000


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "text"},
        {"title": "   ", "content": "text"},
        {"title": "t" * 201, "content": "text"},
        {"title": "Hi", "content": ""},
        {"title": "Hi", "content": "c" * 100_001},
        {"content": "text"},
        {"title": "Hi"},
        {"title": 5, "content": "text"},
    ],
    ids=[
        "empty-title", "blank-title", "title-201", "empty-content", "content-100001",
        "no-title", "no-content", "title-not-a-string",
    ],
)
async def test_create_post_with_bad_values_is_422(api: Api, body: dict[str, Any]) -> None:
    alice = await api.signup("alice")
    response = await api.client.post("/posts", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert (await api.client.get("/posts")).json() == []


# -- GET /posts/{id} --------------------------------------------------------------------


async def test_get_post_is_public(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    response = await api.client.get(f"/posts/{post['id']}")
    assert response.status_code == 200
    assert response.json() == post


@pytest.mark.parametrize("post_id", ["999999", "abc", "-1", "1.5", "9" * 40])
async def test_get_unknown_post_is_404(api: Api, post_id: str) -> None:
    alice = await api.signup("alice")
    await create_post(api, alice)
    response = await api.client.get(f"/posts/{post_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# -- PATCH /posts/{id} ------------------------------------------------------------------


async def test_owner_can_update_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    response = await api.client.patch(
        f"/posts/{post['id']}", json={"title": "  Edited "}, headers=alice.headers
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated == {**post, "title": "Edited"}
    assert (await api.client.get(f"/posts/{post['id']}")).json() == updated


async def test_other_user_cannot_update_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    bob = await api.signup("bob")
    response = await api.client.patch(
        f"/posts/{post['id']}", json={"content": "defaced"}, headers=bob.headers
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert (await api.client.get(f"/posts/{post['id']}")).json() == post


async def test_admin_can_update_any_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    admin = await api.admin()
    response = await api.client.patch(
        f"/posts/{post['id']}", json={"content": "moderated"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json() == {**post, "content": "moderated"}


async def test_update_post_without_token_is_401(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    response = await api.client.patch(f"/posts/{post['id']}", json={"title": "x"})
    assert_unauthenticated(response)


@pytest.mark.parametrize("post_id", ["999999", "abc"])
async def test_update_unknown_post_is_404(api: Api, post_id: str) -> None:
    alice = await api.signup("alice")
    response = await api.client.patch(
        f"/posts/{post_id}", json={"title": "x"}, headers=alice.headers
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [{"title": ""}, {"title": "  "}, {"title": "t" * 201}, {"content": ""},
     {"content": "c" * 100_001}, {}],
    ids=["empty-title", "blank-title", "title-201", "empty-content", "content-100001", "nothing"],
)
async def test_update_post_with_bad_values_is_422(api: Api, body: dict[str, Any]) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    response = await api.client.patch(f"/posts/{post['id']}", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert (await api.client.get(f"/posts/{post['id']}")).json() == post


# -- DELETE /posts/{id} -----------------------------------------------------------------


async def test_owner_can_delete_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    response = await api.client.delete(f"/posts/{post['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await api.client.get(f"/posts/{post['id']}")).status_code == 404
    assert (await api.client.get("/posts")).json() == []


async def test_other_user_cannot_delete_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    bob = await api.signup("bob")
    response = await api.client.delete(f"/posts/{post['id']}", headers=bob.headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert (await api.client.get(f"/posts/{post['id']}")).json() == post


async def test_admin_can_delete_any_post(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    admin = await api.admin()
    response = await api.client.delete(f"/posts/{post['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert (await api.client.get(f"/posts/{post['id']}")).status_code == 404


async def test_delete_post_without_token_is_401(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    assert_unauthenticated(await api.client.delete(f"/posts/{post['id']}"))
    assert (await api.client.get(f"/posts/{post['id']}")).status_code == 200


@pytest.mark.parametrize("post_id", ["999999", "abc"])
async def test_delete_unknown_post_is_404(api: Api, post_id: str) -> None:
    alice = await api.signup("alice")
    response = await api.client.delete(f"/posts/{post_id}", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_logged_out_author_cannot_write(api: Api) -> None:
    alice = await api.signup("alice")
    post = await create_post(api, alice)
    assert (await api.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    response = await api.client.delete(f"/posts/{post['id']}", headers=alice.headers)
    assert_unauthenticated(response)


# -- the blog is an outside consumer of the library -------------------------------------

# The whole server is private to the blog but for one column type of its own table.
PRIVATE_PARTS = ("jwtauth.server",)
ALLOWED_PRIVATE = {"jwtauth.server.store.tables.UTCDateTime"}


def imported_names(path: Path, package: str) -> set[str]:
    """Every dotted name a module imports, relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def is_private(name: str) -> bool:
    return any(name == part or name.startswith(part + ".") for part in PRIVATE_PARTS)


def test_blog_imports_only_the_public_library() -> None:
    package_dir = Path(jwtauth.server.blog.__file__).parent
    sources = sorted(package_dir.glob("*.py"))
    assert sources, package_dir
    imports = {name for path in sources for name in imported_names(path, "jwtauth.server.blog")}
    # The parser sees the library imports it should (a vacuous pass would see nothing).
    assert "jwtauth.fastapi.current_claims" in imports
    assert "jwtauth.server.store.tables.UTCDateTime" in imports
    own = {name for name in imports if name.startswith("jwtauth.server.blog.")}
    private = {name for name in imports if is_private(name)} - ALLOWED_PRIVATE - own
    assert private == set()
