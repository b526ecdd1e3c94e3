"""Shared parts of the attack suites (test_attacks_*.py): a running server per algorithm,
a forger that signs with the server's own key, and the one check every attack must meet.

Attack tokens are signed by hand (hmac and cryptography directly, not the code under
test), with the server's real key unless the attack is about the key, so each forged
token is wrong in exactly one way. ``test_forged_control_token_is_accepted`` proves the
forger itself makes tokens the server takes.

The servers are built once per module and algorithm (the attacks change no state) on
each backend; the tests run in the module's event loop for that reason.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from jwtauth import InvalidToken, Verifier
from jwtauth.keys import SigningKey
from jwtauth.server.config import Settings
from jwtauth.server.web.app import create_app

from conftest import (
    BASE_URL,
    FAST_HASH,
    POSTGRES_URL,
    Api,
    Clock,
    Tokens,
    _drop_schema,
    _postgres_state,
    _probe_postgres,
    unavailable,
)
from library.kit import b64, sign

ISSUER = "https://jwtauth.test"
AUDIENCE = "jwtauth"
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]
ASYMMETRIC = ["ES256", "RS256", "EdDSA"]

# Routes anyone may call. Every other operation of the OpenAPI document is attacked, so a
# new route is covered the day it is added, and a route that forgot its guard fails here.
PUBLIC = frozenset({
    ("POST", "/auth/register"), ("POST", "/auth/login"), ("POST", "/auth/refresh"),
    ("GET", "/posts"), ("GET", "/posts/{post_id}"), ("GET", "/healthz"),
    ("GET", "/.well-known/jwks.json"), ("GET", "/.well-known/openid-configuration"),
})
# The routes every algorithm is tried on (the full list runs on ES256): the thin ASGI
# path, a server route, a blog route behind the library's dependency, an admin route.
SAMPLE_ROUTES = [
    ("GET", "/users/me"), ("GET", "/auth/sessions"), ("POST", "/posts"),
    ("GET", "/admin/users"),
]


def join(header: bytes | str, payload: bytes | str, signature: bytes | str) -> str:
    """Segments given as bytes are base64url-encoded, given as str are used as they are."""
    return ".".join(part if isinstance(part, str) else b64(part)
                    for part in (header, payload, signature))


def signed(key: SigningKey | bytes, header: str, payload: str) -> str:
    """Sign exactly the segments given (already encoded, however oddly)."""
    return f"{header}.{payload}.{b64(sign(key, f'{header}.{payload}'.encode()))}"


@dataclass
class Target:
    """One running server, the keys it signs with, and the library's view of it."""

    alg: str
    api: Api
    key: SigningKey
    user: Tokens
    user_id: str
    session_id: str
    verifier: Verifier
    jwks: dict[str, Any]
    routes: list[tuple[str, str]] = field(default_factory=list)

    def now(self) -> int:
        return int(self.api.clock())

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Good claims of the signed-in user; a change of None leaves the claim out."""
        now = self.now()
        claims = {
            "iss": ISSUER, "sub": self.user_id, "aud": AUDIENCE, "iat": now, "nbf": now,
            "exp": now + 300, "jti": uuid.uuid4().hex, "sid": self.session_id,
            "roles": ["user", "admin"], "preferred_username": "alice", **changes,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def header(self, **changes: Any) -> dict[str, Any]:
        header = {"alg": self.key.alg, "kid": self.key.kid, "typ": "at+jwt", **changes}
        return {name: value for name, value in header.items() if value is not None}

    def forge(self, claims: dict[str, Any] | bytes | None = None, *,
              key: SigningKey | bytes | None = None, **header_changes: Any) -> str:
        """A token signed by the server's key (or ``key``) with one thing changed."""
        payload = self.claims() if claims is None else claims
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = b64(json.dumps(self.header(**header_changes)).encode())
        return signed(self.key if key is None else key, head, b64(raw))

    def routes_to_attack(self) -> list[tuple[str, str]]:
        return self.routes if self.alg == "ES256" else SAMPLE_ROUTES


async def refused_by_server(target: Target, token: str) -> None:
    """Every attacked route answers 401 invalid_token with RFC 6750's header."""
    await all_routes_refuse(target, headers={"Authorization": f"Bearer {token}"})


async def all_routes_refuse(target: Target, *, presented: bool = True, **request: Any) -> None:
    """Every attacked route answers ``request`` with 401 invalid_token and a Bearer
    challenge, naming error="invalid_token" only when a bearer token was ``presented``
    (RFC 6750 section 3.1)."""
    failures = []
    for method, path in target.routes_to_attack():
        response = await target.api.client.request(method, path, **request)
        challenge = response.headers.get("www-authenticate", "")
        body = response.json() if response.content else {}
        if (response.status_code != 401 or body.get("error") != "invalid_token"
                or not challenge.startswith("Bearer ")
                or presented != ('error="invalid_token"' in challenge)):
            failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures, f"{target.alg} token accepted or wrongly refused:\n" + "\n".join(failures)


async def refused_by_verifier(verifier: Verifier, token: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert type(caught.value) is InvalidToken


async def refused(target: Target, token: str) -> None:
    """The attack fails against the server and against the library's Verifier alike."""
    await refused_by_server(target, token)
    await refused_by_verifier(target.verifier, token)


def protected_routes(app: Any) -> list[tuple[str, str]]:
    """Every operation of the app's OpenAPI document that is not public, ids filled in."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if (method.upper(), path) not in PUBLIC:
                routes.append((method.upper(), re.sub(r"\{[^}]*\}", "1", path)))
    return routes


class Targets:
    """Servers built on demand, one per algorithm, all on one backend."""

    def __init__(self, database: dict[str, Any] | None, workdir: Path) -> None:
        self.database = database
        self.workdir = workdir
        self.built: dict[str, Target] = {}
        self.schemas: list[str] = []
        self._contexts: list[tuple[Any, httpx.AsyncClient]] = []

    async def get(self, alg: str) -> Target:
        if alg not in self.built:
            self.built[alg] = await self._build(alg)
        return self.built[alg]

    async def _build(self, alg: str) -> Target:
        if self.database is None:
            database: dict[str, Any] = {"database_url": f"sqlite:///{self.workdir / alg}.db"}
        else:
            schema = "t_" + uuid.uuid4().hex[:16]
            self.schemas.append(schema)
            database = {**self.database, "database_schema": schema}
        secret = {"secret": secrets.token_urlsafe(36)} if alg == "HS256" else {}
        settings = Settings(**{**FAST_HASH, "public_url": None, "issuer": ISSUER,
                               "algorithm": alg, **secret, **database})
        clock = Clock()
        app = create_app(settings, clock=clock)
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        self._contexts.append((context, client))
        api = Api(client, app, clock)
        user = await api.signup("alice")
        await api.admin("root")
        me = (await client.get("/users/me", headers=user.headers)).json()
        jwks = (await client.get("/.well-known/jwks.json")).json()
        # Login set refresh cookies; an attack must stand on its bearer token alone.
        client.cookies.clear()
        if alg == "HS256":
            verifier = Verifier.from_secret(secret["secret"], issuer=ISSUER, audience=AUDIENCE,
                                            clock=clock)
        else:
            verifier = Verifier.from_keys(jwks["keys"], issuer=ISSUER, audience=AUDIENCE,
                                          clock=clock)
        return Target(alg, api, api.service.keyring.signing_key, user, me["id"],
                      me["session_id"], verifier, jwks, protected_routes(app))

    async def close(self) -> None:
        for context, client in reversed(self._contexts):
            await client.aclose()
            await context.__aexit__(None, None, None)
        for schema in self.schemas:
            await _drop_schema(schema)


@pytest_asyncio.fixture(
    scope="module", loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def targets(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Targets]:
    database = None
    if request.param == "postgres":
        if "error" not in _postgres_state:
            _postgres_state["error"] = await _probe_postgres()
        if _postgres_state["error"]:
            unavailable(f"PostgreSQL at {POSTGRES_URL}", _postgres_state["error"])
        database = {"database_url": POSTGRES_URL}
    built = Targets(database, tmp_path_factory.mktemp("attacks"))
    yield built
    await built.close()


class KeyServer:
    """A loopback HTTP server that counts every request. It answers ``documents[path]``,
    else ``jwks``: the attacker's keys, so a fetch of a URL named in a token would make
    the forgery verify."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.jwks: dict[str, Any] = {"keys": []}
        self.documents: dict[str, Any] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                body = json.dumps(outer.documents.get(self.path, outer.jwks)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


@pytest_asyncio.fixture(loop_scope="module", params=ALGS)
async def target(request: pytest.FixtureRequest, targets: Targets) -> Target:
    """The server (and Verifier) of each algorithm in turn."""
    return await targets.get(request.param)


@pytest_asyncio.fixture(loop_scope="module", params=ASYMMETRIC)
async def asymmetric_target(request: pytest.FixtureRequest, targets: Targets) -> Target:
    return await targets.get(request.param)


@pytest_asyncio.fixture(loop_scope="module")
async def es256(targets: Targets) -> Target:
    return await targets.get("ES256")
