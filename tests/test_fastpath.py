"""The thin ASGI route for GET /users/me and /auth/check answers exactly what the
FastAPI routes behind it would, and hands everything else on."""

import httpx
import pytest

from jwtauth.server.web.fastpath import FastPath

from conftest import Api


async def _via_router(api: Api, path: str, headers: dict[str, str]) -> httpx.Response:
    # The same application stack with the fast path left out.
    kept = list(api.app.user_middleware)
    api.app.user_middleware = [m for m in kept if m.cls is not FastPath]
    try:
        stack = api.app.build_middleware_stack()
    finally:
        api.app.user_middleware = kept
    transport = httpx.ASGITransport(app=stack)
    async with httpx.AsyncClient(transport=transport, base_url="https://jwtauth.test") as c:
        return await c.get(path, headers=headers)


@pytest.mark.parametrize("path", ["/users/me", "/auth/check"])
async def test_fast_path_answers_like_the_fastapi_route(api: Api, path: str) -> None:
    tokens = await api.signup()
    fast = await api.client.get(path, headers=tokens.headers)
    slow = await _via_router(api, path, tokens.headers)
    assert fast.status_code == slow.status_code
    assert fast.content == slow.content
    for name in ("content-type", "cache-control", "x-auth-user-id", "x-auth-roles"):
        assert fast.headers.get(name) == slow.headers.get(name), name


@pytest.mark.parametrize("path", ["/users/me", "/auth/check"])
async def test_fast_path_hands_failures_to_the_app(api: Api, path: str) -> None:
    tokens = await api.signup()
    await api.client.post("/auth/logout", headers=tokens.headers)
    revoked = await api.client.get(path, headers=tokens.headers)
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    missing = await api.client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="jwtauth"'


async def test_other_methods_on_hot_paths_reach_the_app(api: Api) -> None:
    tokens = await api.signup()
    response = await api.client.post("/users/me", headers=tokens.headers)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
