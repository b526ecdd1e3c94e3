"""Fixtures: a real database per test (SQLite file, or a fresh PostgreSQL schema), an app
built per test with an injectable clock, and a small client for the HTTP flows."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwtauth.server.config import Settings
from jwtauth.server.web.app import create_app

from library.kit import Clock  # the injectable clock, shared with the library's tests

# The attack suites' servers, forger and loopback key server (test_attacks_*.py).
pytest_plugins = ["attack_kit"]

POSTGRES_URL = os.environ.get(
    "JWTAUTH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("JWTAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
BASE_URL = "https://jwtauth.test"
PASSWORD = "correct-horse-battery-9"

# Cheap argon2 parameters keep the suite fast; production defaults are tested in
# test_passwords.py.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 8192, "argon2_parallelism": 1}


def unavailable(what: str, reason: str) -> None:
    """Skip on a laptop without the service; fail under CI=true, where it must be there."""
    message = f"{what} is not reachable ({reason})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


_postgres_state: dict[str, str | None] = {}


async def _probe_postgres() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@dataclass
class Backend:
    """Where one test's data lives: settings overrides for the database."""

    name: str
    overrides: dict[str, Any]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", {"database_url": f"sqlite:///{tmp_path / 'jwtauth.db'}"})
        return
    if "error" not in _postgres_state:
        _postgres_state["error"] = await _probe_postgres()
    if _postgres_state["error"]:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", _postgres_state["error"])
    schema = "t_" + uuid.uuid4().hex[:16]
    yield Backend("postgres", {"database_url": POSTGRES_URL, "database_schema": schema})
    await _drop_schema(schema)


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", {"database_url": f"sqlite:///{tmp_path / 'jwtauth.db'}"})


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    """The HTTP flows the tests repeat (flaskr's AuthActions)."""

    def __init__(self, client: httpx.AsyncClient, app: Any, clock: Clock) -> None:
        self.client = client
        self.app = app
        self.clock = clock

    @property
    def service(self) -> Any:
        """The AuthService, as the routes call it."""
        return self.app.state.service

    @property
    def server(self) -> Any:
        """Every part of the server (``jwtauth.server.wiring.Server``), to look inside."""
        return self.app.state.server

    async def register(self, username: str = "alice", password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/auth/register", json={"username": username, "password": password}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def login(self, username: str = "alice", password: str = PASSWORD) -> Tokens:
        response = await self.client.post(
            "/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return Tokens(body["access_token"], body["refresh_token"], body)

    async def signup(self, username: str = "alice", password: str = PASSWORD) -> Tokens:
        await self.register(username, password)
        return await self.login(username, password)

    async def admin(self, username: str = "root") -> Tokens:
        """A user with the admin role, made the way an operator would (the service)."""
        await self.service.register(username, PASSWORD, roles=["user", "admin"])
        return await self.login(username)


AppFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(backend: Backend) -> AsyncIterator[AppFactory]:
    """Build an app on the test's backend; keyword arguments override settings."""
    stack: list[tuple[Any, httpx.AsyncClient]] = []

    async def build(clock: Clock | None = None, **overrides: Any) -> Api:
        clock = clock or Clock()
        settings = Settings(
            **{**FAST_HASH, "public_url": None, "issuer": "https://jwtauth.test",
               **backend.overrides, **overrides}
        )
        app = create_app(settings, clock=clock)
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        stack.append((context, client))
        return Api(client, app, clock)

    yield build
    for context, client in reversed(stack):
        await client.aclose()
        await context.__aexit__(None, None, None)


@pytest.fixture
async def api(make_api: AppFactory) -> Api:
    return await make_api()


# -- Real server processes on loopback (test_jwks.py, test_example.py) ------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveProcess:
    """A process we started, serving HTTP at ``url``; its output goes to ``log``."""

    url: str
    process: Any
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_process(args: list[str], env: dict[str, str], url: str, log: Path,
                  ready_path: str) -> LiveProcess:
    """Start ``args`` and wait (at most 30 s) until GET ``url + ready_path`` answers."""
    import subprocess
    import sys
    import time

    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=log.parent, stdout=out,
            stderr=subprocess.STDOUT,
        )
    live = LiveProcess(url, process, log, env)
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"{args} exited with {process.returncode}:\n{live.output()}")
        try:
            httpx.get(url + ready_path, timeout=1)
            return live
        except httpx.TransportError:
            time.sleep(0.1)
    live.stop()
    pytest.fail(f"{args} did not answer at {url} within 30 s:\n{live.output()}")


def server_env(database: Path) -> dict[str, str]:
    """The environment of a `jwtauth serve` on a fresh SQLite file, with cheap argon2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env.update(
        JWTAUTH_DATABASE_URL=f"sqlite:///{database}",
        JWTAUTH_ARGON2_TIME_COST="1",
        JWTAUTH_ARGON2_MEMORY_COST="8192",
        JWTAUTH_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`python -m jwtauth serve` as its own process on a free loopback port."""
    workdir = tmp_path_factory.mktemp("live_server")
    port = free_port()
    live = start_process(
        ["-m", "jwtauth", "serve", "--port", str(port)], server_env(workdir / "jwtauth.db"),
        f"http://127.0.0.1:{port}", workdir / "server.log", "/healthz",
    )
    yield live
    live.stop()


# -- Redis (several instances: test_instances.py, test_events.py, test_redis_limits.py) --

_redis_state: dict[str, str | None] = {}


def redis_error() -> str | None:
    """Why the test Redis cannot be used (probed once), or None."""
    if "error" not in _redis_state:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            client.ping()
            _redis_state["error"] = None
        except (redis.RedisError, OSError) as exc:
            _redis_state["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()
    return _redis_state["error"]


def delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Any:
    """A key prefix of its own in the test Redis (database 15), emptied afterwards. Name it
    before ``make_api`` in a test's arguments: the servers stop first, or one would refill
    the prefix after it was emptied."""
    error = redis_error()
    if error:
        unavailable(f"Redis at {REDIS_URL}", error)
    prefix = f"t_{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_redis_prefix(prefix)
