"""``jwtauth.starlette.JWTAuthMiddleware`` on a tiny Starlette app: protected and excluded
paths, claims in ``request.state``, and refusals that look exactly like the server's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from jwtauth import Verifier
from jwtauth.keys import Keyring, SigningKey
from jwtauth.server.keys import generate_key
from jwtauth.server.tokens import TokenIssuer
from jwtauth.starlette import JWTAuthMiddleware
from jwtauth.tokens import ClaimsPolicy

from conftest import Api, Clock

ISSUER = "https://jwtauth.test"
AUDIENCE = "jwtauth"
KEY: SigningKey = generate_key("ES256")


def issue(roles: list[str] | None = None, key: SigningKey = KEY, ttl: int = 900) -> str:
    issuer = TokenIssuer(Keyring([key]), ClaimsPolicy(ISSUER, AUDIENCE), ttl, Clock())
    return issuer.issue(sub="7", sid="s-7", roles=roles or ["user"], username="carol")


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
    verifier = Verifier.from_keys([KEY], issuer=ISSUER, audience=AUDIENCE)
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
    stranger = issue(key=generate_key("ES256"))
    for token in ("not-a-jwt", stranger, issue()[:-6] + "AAAAAA", issue(ttl=-3600)):
        response = await client.get("/api/me", headers=bearer(token))
        assert response.status_code == 401, token
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


@pytest.mark.parametrize(
    "headers",
    [[], [("Authorization", "Bearer not-a-jwt")], [("Authorization", "Basic dXNlcjpwdw==")],
     [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]],
    ids=["none", "malformed", "basic", "two-headers"],
)
async def test_refusals_have_the_same_status_body_and_headers_as_the_server(
    api: Api, client: httpx.AsyncClient, headers: list[tuple[str, str]]
) -> None:
    ours = await client.get("/api/me", headers=headers)
    server = await api.client.get("/users/me", headers=headers)
    assert ours.status_code == server.status_code == 401
    assert ours.json() == server.json()
    for name in ("WWW-Authenticate", "Cache-Control", "Content-Type"):
        assert ours.headers.get(name) == server.headers.get(name), name


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
    stranger = f"Bearer {issue(key=generate_key('ES256'))}".encode()
    assert await websocket_session(app, [(b"authorization", stranger)]) == [
        ("websocket.close", 1008)]
    good = f"Bearer {issue()}".encode()
    assert await websocket_session(app, [(b"authorization", good)]) == [
        ("websocket.accept", None), ("websocket.send", '{"sub":"7"}'), ("websocket.close", 1000)]
