"""``jwtauth.starlette`` on tiny Starlette apps: ``JWTAuthMiddleware`` (protected and
excluded paths, claims in ``request.state``, websockets) and ``JWTAuthBackend`` for
Starlette's ``AuthenticationMiddleware`` (``request.user``, ``@requires``). That their
refusals look exactly like the server's is tests/test_library_integration.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jwtauth import Verifier

from .conftest import needs_extra
from .kit import AUDIENCE, DROP, ISSUER, Clock, key_for, new_key, token

needs_extra("starlette", "starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.authentication import requires  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.authentication import AuthenticationMiddleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket  # noqa: E402

from jwtauth.starlette import JWTAuthBackend, JWTAuthMiddleware, on_auth_error  # noqa: E402

KEY = key_for("ES256")


def issue(roles: list[str] | None = None, key: Any = KEY, ttl: int = 900) -> str:
    clock = Clock()
    return token(key, clock, sub="7", sid="s-7", roles=roles or ["user"],
                 preferred_username="carol", exp=int(clock()) + ttl)


async def whoami(request: Request) -> JSONResponse:
    claims = getattr(request.state, "claims", None)
    if claims is None:
        return JSONResponse({"anonymous": True})
    return JSONResponse({"sub": claims.sub, "roles": list(claims.roles), "sid": claims.sid})


async def ws_whoami(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.state.claims.sub})
    await websocket.close()


def build_app(**options: Any) -> Starlette:
    verifier = Verifier.from_keys([KEY.public_jwk()], issuer=ISSUER, audience=AUDIENCE)
    routes = [Route(path, whoami) for path in
              ("/api/me", "/api/public/info", "/apiary", "/health", "/other")]
    routes.append(WebSocketRoute("/api/ws", ws_whoami))
    middleware = [Middleware(JWTAuthMiddleware, verifier=verifier, **options)]
    return Starlette(routes=routes, middleware=middleware)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(paths=["/api"], exclude=["/api/public"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://service.test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_protected_path_without_a_token_answers_401_with_www_authenticate(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "message": "An access token is required."}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="jwtauth"'
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_bad_token_answers_401_invalid_token_with_the_error_in_www_authenticate(
    client: httpx.AsyncClient,
) -> None:
    stranger = issue(key=new_key("ES256"))
    for bad in ("not-a-jwt", stranger, issue()[:-6] + "AAAAAA", issue(ttl=-3600)):
        response = await client.get("/api/me", headers=bearer(bad))
        assert response.status_code == 401, bad
        assert response.json()["error"] == "invalid_token"
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="jwtauth", error="invalid_token"')


async def test_a_good_token_reaches_the_app_with_its_claims_in_request_state(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/me", headers=bearer(issue(["user", "admin"])))
    assert response.status_code == 200
    assert response.json() == {"sub": "7", "roles": ["user", "admin"], "sid": "s-7"}


async def test_excluded_paths_and_paths_outside_the_prefixes_pass_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/api/public/info", "/health", "/apiary"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.json() == {"anonymous": True}


async def test_every_path_is_protected_when_no_prefixes_are_given() -> None:
    app = build_app(exclude=["/health"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://service.test") as c:
        assert (await c.get("/other")).status_code == 401
        assert (await c.get("/apiary")).status_code == 401
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/other", headers=bearer(issue()))).json()["sub"] == "7"


async def test_several_authorization_headers_are_refused(client: httpx.AsyncClient) -> None:
    token = issue()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def websocket_session(app: Starlette, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    """What the app sends over one websocket connection to /api/ws (a raw ASGI call)."""
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "wss",
             "path": "/api/ws", "raw_path": b"/api/ws", "root_path": "", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 5000),
             "server": ("service.test", 443), "subprotocols": []}
    await app(scope, receive, send)
    return [(m["type"], m.get("code") or m.get("text")) for m in sent]


async def test_a_websocket_to_a_protected_path_is_closed_1008_without_a_good_token() -> None:
    app = build_app(paths=["/api"])
    assert await websocket_session(app, []) == [("websocket.close", 1008)]
    stranger = f"Bearer {issue(key=new_key('ES256'))}".encode()
    assert await websocket_session(app, [(b"authorization", stranger)]) == [
        ("websocket.close", 1008)]
    good = f"Bearer {issue()}".encode()
    assert await websocket_session(app, [(b"authorization", good)]) == [
        ("websocket.accept", None), ("websocket.send", '{"sub":"7"}'), ("websocket.close", 1000)]


# -- JWTAuthBackend: request.user, request.auth and @requires ---------------------------


@requires("authenticated")
async def profile(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse({"identity": user.identity, "name": user.display_name,
                         "scopes": request.auth.scopes, "sid": request.state.claims.sid})


@requires("admin")
async def purge(request: Request) -> JSONResponse:
    return JSONResponse({"purged": True})


async def anyone(request: Request) -> JSONResponse:
    return JSONResponse({"authenticated": request.user.is_authenticated})


@pytest.fixture
async def backend_client() -> AsyncIterator[httpx.AsyncClient]:
    verifier = Verifier.from_keys([KEY.public_jwk()], issuer=ISSUER, audience=AUDIENCE)
    app = Starlette(
        routes=[Route("/me", profile), Route("/purge", purge), Route("/anyone", anyone)],
        middleware=[Middleware(AuthenticationMiddleware, backend=JWTAuthBackend(verifier),
                               on_error=on_auth_error)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://service.test") as c:
        yield c


async def test_the_backend_gives_request_user_and_the_roles_as_scopes(
    backend_client: httpx.AsyncClient,
) -> None:
    response = await backend_client.get("/me", headers=bearer(issue(["user", "editor"])))
    assert response.status_code == 200, response.text
    assert response.json() == {"identity": "7", "name": "carol",
                               "scopes": ["authenticated", "user", "editor"], "sid": "s-7"}


async def test_requires_admits_a_role_and_refuses_its_absence(
    backend_client: httpx.AsyncClient,
) -> None:
    assert (await backend_client.get("/purge", headers=bearer(issue(["user", "admin"])))
            ).json() == {"purged": True}
    assert (await backend_client.get("/purge", headers=bearer(issue(["user"])))
            ).status_code == 403
    assert (await backend_client.get("/purge")).status_code == 403


async def test_a_request_without_a_token_goes_on_unauthenticated(
    backend_client: httpx.AsyncClient,
) -> None:
    assert (await backend_client.get("/anyone")).json() == {"authenticated": False}
    assert (await backend_client.get("/anyone", headers={"Authorization": "Basic eDp5"})
            ).json() == {"authenticated": False}


async def test_a_client_token_has_no_roles_so_requires_refuses_it_a_role(
    backend_client: httpx.AsyncClient,
) -> None:
    # Its OAuth scope "admin" is not the role admin: the two never mix.
    clock = Clock()
    client = token(KEY, clock, sub="svc", sid=DROP, roles=DROP, preferred_username=DROP,
                   scope="admin", client_id="svc")
    assert (await backend_client.get("/purge", headers=bearer(client))).status_code == 403
    me = await backend_client.get("/me", headers=bearer(client))
    assert me.json() == {"identity": "svc", "name": "svc", "scopes": ["authenticated"],
                         "sid": None}


@pytest.mark.parametrize("bad", ["not-a-jwt", "stranger", "expired", "two-headers"])
async def test_a_bad_token_is_refused_with_the_contract_json_through_on_error(
    backend_client: httpx.AsyncClient, bad: str
) -> None:
    headers = {
        "not-a-jwt": [("Authorization", "Bearer not-a-jwt")],
        "stranger": [("Authorization", f"Bearer {issue(key=new_key('ES256'))}")],
        "expired": [("Authorization", f"Bearer {issue(ttl=-3600)}")],
        "two-headers": [("Authorization", f"Bearer {issue()}")] * 2,
    }[bad]
    for path in ("/anyone", "/me"):  # before any route runs, @requires or not
        response = await backend_client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"error": "invalid_token",
                                   "message": "The access token is missing, invalid or expired."}
        assert response.headers["WWW-Authenticate"].startswith(
            'Bearer realm="jwtauth", error="invalid_token"')
        assert response.headers["Cache-Control"] == "no-store"
