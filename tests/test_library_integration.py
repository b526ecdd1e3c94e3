"""The library beside the server (API.md "Library"): the README's library block runs as
written against a real server; a protected FastAPI or Starlette service refuses exactly as
the server does (status, body, headers); the server's own OpenAPI document declares the
Bearer scheme, as a protected service's does (tests/library/test_fastapi.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwtauth import Claims, Verifier
from jwtauth.fastapi import current_claims
from jwtauth.starlette import JWTAuthBackend, JWTAuthMiddleware, on_auth_error

from conftest import BASE_URL, PASSWORD, Api, LiveProcess

README = Path(__file__).resolve().parent.parent / "README.md"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def library_block() -> str:
    """The first python block of the README's section "The library"."""
    text = README.read_text()
    section = text[text.index("## The library"):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the library section has no python block"
    return match.group(1)


async def test_the_readmes_library_block_runs_as_written_against_a_real_server(
    live_server: LiveProcess,
) -> None:
    source = library_block()
    assert source.count("http://127.0.0.1:8000") == 2  # the only thing the test changes
    namespace: dict[str, Any] = {"__name__": "readme_service"}
    code = compile(source.replace("http://127.0.0.1:8000", live_server.url), "README.md", "exec")
    exec(code, namespace)  # noqa: S102 - the README's own code, to prove it runs as written
    app, verifier = namespace["app"], namespace["verifier"]
    name = "readme_" + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as server:
        registered = await server.post("/auth/register",
                                       json={"username": name, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = await server.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as service:
            me = await service.get("/me", headers=auth)
            assert me.status_code == 200, me.text
            assert me.json() == {"user": registered.json()["id"], "roles": ["user"]}
            anonymous = await service.get("/me")
            assert anonymous.status_code == 401
            assert anonymous.json() == {"error": "invalid_token",
                                        "message": "An access token is required."}
            forbidden = await service.delete("/things/1", headers=auth)
            assert forbidden.status_code == 403
            assert forbidden.json()["error"] == "insufficient_role"
    finally:
        await verifier.aclose()


# -- a protected service refuses exactly as the server does ------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.claims.sub})


def services(verifier: Verifier) -> dict[str, Any]:
    fastapi_app = FastAPI()

    @fastapi_app.get("/users/me")
    async def me(claims: Claims = Depends(current_claims(verifier))) -> dict[str, str]:
        return {"sub": claims.sub}

    routes = [Route("/users/me", whoami)]
    return {
        "fastapi": fastapi_app,
        "starlette-middleware": Starlette(routes=routes, middleware=[
            Middleware(JWTAuthMiddleware, verifier=verifier)]),
        "starlette-backend": Starlette(routes=routes, middleware=[
            Middleware(AuthenticationMiddleware, backend=JWTAuthBackend(verifier),
                       on_error=on_auth_error)]),
    }


@pytest.fixture
async def service_clients(api: Api) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    verifier = Verifier.from_jwks(jwks, issuer="https://jwtauth.test", audience="jwtauth")
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                       base_url="https://service.test")
               for name, app in services(verifier).items()}
    yield clients
    for client in clients.values():
        await client.aclose()


@SQLITE_ONLY
@pytest.mark.parametrize(
    "headers",
    [[("Authorization", "Bearer not-a-jwt")], [("Authorization", "Bearer a.b.c")],
     [("Authorization", "Bearer a"), ("Authorization", "Bearer b")], []],
    ids=["malformed", "garbage", "two-headers", "none"],
)
async def test_refusals_have_the_same_status_body_and_headers_as_the_server(
    api: Api, service_clients: dict[str, httpx.AsyncClient], headers: list[tuple[str, str]]
) -> None:
    server = await api.client.get("/users/me", headers=headers)
    assert server.status_code == 401
    for name, client in service_clients.items():
        if name == "starlette-backend" and not headers:
            continue  # no token: the request goes on unauthenticated, by Starlette's design
        ours = await client.get("/users/me", headers=headers)
        assert (ours.status_code, ours.json()) == (server.status_code, server.json()), name
        for header in ("WWW-Authenticate", "Cache-Control", "Content-Type"):
            assert ours.headers.get(header) == server.headers.get(header), (name, header)


@SQLITE_ONLY
async def test_a_token_of_the_server_is_accepted_by_every_kind_of_service(
    api: Api, service_clients: dict[str, httpx.AsyncClient]
) -> None:
    alice = await api.signup("alice")
    me = (await api.client.get("/users/me", headers=alice.headers)).json()
    for name, client in service_clients.items():
        response = await client.get("/users/me", headers=alice.headers)
        assert response.json() == {"sub": me["id"]}, name


# -- the server's OpenAPI document --------------------------------------------------------


@SQLITE_ONLY
async def test_the_servers_openapi_declares_the_bearer_scheme_on_its_guarded_routes(
    api: Api,
) -> None:
    document = (await api.client.get(f"{BASE_URL}/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    security = {(method.upper(), path): operation.get("security")
                for path, item in document["paths"].items()
                for method, operation in item.items()}
    guarded = [("GET", "/users/me"), ("GET", "/auth/sessions"), ("POST", "/auth/logout-all"),
               ("POST", "/posts"), ("GET", "/admin/users")]
    for operation in guarded:
        assert security[operation] == [{"bearerAuth": []}], operation
    for operation in [("POST", "/auth/login"), ("POST", "/auth/register"), ("GET", "/posts")]:
        assert security[operation] is None, operation
