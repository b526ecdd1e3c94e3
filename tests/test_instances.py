"""Several instances (issue 3, point 4): real `jwtauth serve` processes on loopback, on one
PostgreSQL schema and one Redis, behave as one server. Tokens are interchangeable; a session
ended at one instance is refused at the others within 1 s (through Redis: the database
poll is set to 60 s here, so nothing else could carry it in time); a key rotated at one
signs everywhere; login limits are shared; a process that lost Redis catches up before
it refuses too late, and one cut off from both Redis and PostgreSQL refuses every token.

The delays measured (ending answered at A -> first refusal at B) are written to
tests/output/instance_delays.json.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from jwtauth import InvalidToken, Verifier
from jwtauth.events import RevocationFeed

from conftest import (
    PASSWORD,
    POSTGRES_URL,
    REDIS_URL,
    LiveProcess,
    _probe_postgres,
    delete_redis_prefix,
    free_port,
    redis_error,
    server_env,
    start_process,
    unavailable,
)
from redis_kit import RedisUser, lose_data

ISSUER = "https://auth.instances.test"
OUTPUT = Path(__file__).parent / "output" / "instance_delays.json"

pytestmark = pytest.mark.postgres


def require_services() -> None:
    error = asyncio.run(_probe_postgres())
    if error:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", error)
    error = redis_error()
    if error:
        unavailable(f"Redis at {REDIS_URL}", error)


async def _sql(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@dataclass
class Cluster:
    """Server processes sharing one database schema and one Redis key prefix."""

    workdir: Path
    schema: str = field(default_factory=lambda: "t_" + uuid.uuid4().hex[:16])
    prefix: str = field(default_factory=lambda: f"t_{uuid.uuid4().hex[:12]}:")
    instances: list[LiveProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = server_env(self.workdir / "unused.db")
        env.update(
            JWTAUTH_DATABASE_URL=POSTGRES_URL,
            JWTAUTH_DATABASE_SCHEMA=self.schema,
            JWTAUTH_REDIS_URL=REDIS_URL,
            JWTAUTH_REDIS_PREFIX=self.prefix,
            # The same everywhere, or tokens from one instance fail `iss` at another.
            JWTAUTH_ISSUER=ISSUER,
            JWTAUTH_KEY_ENCRYPTION_KEY="instances-test-kek-" + "k" * 24,
            JWTAUTH_REVOCATION_POLL_INTERVAL="60",
        )
        env.update(overrides)
        return env

    def start(self, **overrides: str) -> LiveProcess:
        port = free_port()
        name = f"instance{len(self.instances)}"
        live = start_process(
            ["-m", "jwtauth", "serve", "--port", str(port)], self.env(**overrides),
            f"http://127.0.0.1:{port}", self.workdir / f"{name}.log", "/healthz",
        )
        self.instances.append(live)
        return live

    def command(self, *args: str, stdin: str | None = None) -> str:
        """Run `jwtauth ARGS` with the instances' settings; its standard output."""
        done = subprocess.run(
            [sys.executable, "-m", "jwtauth", *args], input=stdin, text=True, env=self.env(),
            cwd=self.workdir, check=True, capture_output=True, timeout=60,
        )
        return done.stdout

    def create_admin(self, name: str = "root") -> None:
        self.command("user", "create", name, "--role", "admin", "--password-stdin",
                     stdin=PASSWORD)

    def close(self) -> None:
        for live in self.instances:
            live.stop()
        asyncio.run(_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        delete_redis_prefix(self.prefix)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three instances: A (the first, which migrates the schema), B and C."""
    require_services()
    group = Cluster(tmp_path_factory.mktemp("instances"))
    try:
        group.start()
        group.start()
        group.start()
        group.create_admin()
        yield group
    finally:
        group.close()


@pytest.fixture
def lone_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Instances of the test's own, for the tests that cut connections."""
    require_services()
    group = Cluster(tmp_path)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="module")
def delays() -> Iterator[dict[str, float]]:
    measured: dict[str, float] = {}
    yield measured
    if measured:
        OUTPUT.parent.mkdir(exist_ok=True)
        summary = {"seconds": measured, "median": statistics.median(measured.values())}
        OUTPUT.write_text(json.dumps(summary, indent=2) + "\n")


# -- HTTP helpers ------------------------------------------------------------------------


@dataclass
class Session:
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    @property
    def kid(self) -> str:
        head = self.access_token.split(".")[0]
        return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


async def register(client: httpx.AsyncClient, at: LiveProcess, username: str) -> str:
    response = await client.post(f"{at.url}/auth/register",
                                 json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def login(client: httpx.AsyncClient, at: LiveProcess, username: str,
                password: str = PASSWORD) -> Session:
    response = await client.post(f"{at.url}/auth/login",
                                 json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return Session(body["access_token"], body["refresh_token"])


async def me(client: httpx.AsyncClient, at: LiveProcess, session: Session) -> int:
    return (await client.get(f"{at.url}/users/me", headers=session.headers)).status_code


async def refused_within(client: httpx.AsyncClient, at: LiveProcess, session: Session,
                         within: float = 1.0) -> float:
    """Seconds until ``at`` refuses the session's access token; fails after ``within``."""
    started = time.monotonic()
    while (status := await me(client, at, session)) == 200:
        if time.monotonic() - started > within:
            pytest.fail(f"{at.url} still accepts the token after {within} s")
        await asyncio.sleep(0.002)
    assert status == 401
    return time.monotonic() - started


def fresh_name() -> str:
    return "u" + secrets.token_hex(6)


# -- one server --------------------------------------------------------------------------


async def test_a_token_issued_by_one_instance_is_accepted_by_the_others(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.instances
    async with httpx.AsyncClient() as client:
        name = fresh_name()
        await register(client, a, name)
        session = await login(client, a, name)
        assert await me(client, b, session) == 200
        assert await me(client, c, session) == 200
        refreshed = await client.post(f"{b.url}/auth/refresh",
                                      json={"refresh_token": session.refresh_token})
        assert refreshed.status_code == 200, refreshed.text


ENDINGS = ["logout", "logout-all", "session-delete", "password-change", "user-delete"]


@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_session_ended_at_one_instance_is_refused_at_the_others_within_a_second(
    cluster: Cluster, delays: dict[str, float], ending: str,
) -> None:
    a, b, c = cluster.instances
    async with httpx.AsyncClient() as client:
        name, bystander_name = fresh_name(), fresh_name()
        user_id = await register(client, a, name)
        await register(client, a, bystander_name)
        actor = await login(client, a, name)
        other = await login(client, c, name)  # another device, signed in elsewhere
        bystander = await login(client, b, bystander_name)
        for session in (actor, other, bystander):
            assert await me(client, b, session) == 200
        if ending == "logout":
            response = await client.post(f"{a.url}/auth/logout", headers=actor.headers)
            doomed = actor
        elif ending == "logout-all":
            response = await client.post(f"{a.url}/auth/logout-all", headers=actor.headers)
            doomed = other
        elif ending == "session-delete":
            listed = await client.get(f"{a.url}/auth/sessions", headers=actor.headers)
            [other_id] = [s["id"] for s in listed.json() if not s["current"]]
            response = await client.delete(f"{a.url}/auth/sessions/{other_id}",
                                           headers=actor.headers)
            doomed = other
        elif ending == "password-change":
            response = await client.post(
                f"{a.url}/auth/password", headers=actor.headers,
                json={"current_password": PASSWORD, "new_password": "another-horse-staple-7"},
            )
            doomed = other
        else:
            admin = await login(client, a, "root")
            response = await client.delete(f"{a.url}/admin/users/{user_id}",
                                           headers=admin.headers)
            doomed = actor
        assert response.status_code == 204, response.text
        delays[ending] = await refused_within(client, b, doomed)
        await refused_within(client, c, doomed)
        assert await me(client, b, bystander) == 200
        if ending == "password-change":
            assert await me(client, b, actor) == 200  # the session that changed it stays


async def test_a_key_rotated_at_one_instance_signs_and_verifies_everywhere(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.instances
    async with httpx.AsyncClient() as client:
        name = fresh_name()
        await register(client, a, name)
        before = await login(client, b, name)
        admin = await login(client, a, "root")
        rotated = await client.post(f"{a.url}/admin/keys/rotate", headers=admin.headers)
        assert rotated.status_code == 200, rotated.text
        kid = rotated.json()["kid"]
        assert before.kid != kid
        signed_at_a = await login(client, a, name)
        assert signed_at_a.kid == kid
        started = time.monotonic()
        while (await login(client, b, name)).kid != kid:
            assert time.monotonic() - started < 1, "B still signs with the old key"
            await asyncio.sleep(0.01)
        jwks = (await client.get(f"{c.url}/.well-known/jwks.json")).json()
        assert kid in {key["kid"] for key in jwks["keys"]}
        for at in (b, c):
            assert await me(client, at, signed_at_a) == 200
            assert await me(client, at, before) == 200  # the old key verifies until expiry


async def test_changes_made_from_the_command_line_reach_every_instance_at_once(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.instances
    async with httpx.AsyncClient() as client:
        name = fresh_name()
        await register(client, a, name)
        session = await login(client, a, name)
        assert await me(client, b, session) == 200
        cluster.command("user", "delete", name, "--yes")
        await refused_within(client, b, session)
        await refused_within(client, c, session)
        kid = cluster.command("keys", "rotate").strip()
        other = fresh_name()
        await register(client, a, other)
        started = time.monotonic()
        while (await login(client, c, other)).kid != kid:
            assert time.monotonic() - started < 1, "C still signs with the old key"
            await asyncio.sleep(0.01)


async def test_login_failures_at_one_instance_limit_logins_at_another(cluster: Cluster) -> None:
    a, b, c = cluster.instances
    async with httpx.AsyncClient() as client:
        name = fresh_name()
        await register(client, a, name)
        for _ in range(5):
            failed = await client.post(f"{a.url}/auth/login",
                                       json={"username": name, "password": "wrong-horse-1"})
            assert failed.status_code == 401
        for at in (b, c):
            limited = await client.post(f"{at.url}/auth/login",
                                        json={"username": name, "password": PASSWORD})
            assert limited.status_code == 429, limited.text
            assert int(limited.headers["Retry-After"]) >= 1


async def test_another_service_following_the_feed_refuses_a_logged_out_token(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.instances
    feed = RevocationFeed.from_redis(REDIS_URL, prefix=cluster.prefix)
    verifier = Verifier.from_jwks_url(f"{a.url}/.well-known/jwks.json", issuer=ISSUER,
                                      audience="jwtauth", revocations=feed.revocations)
    try:
        assert await feed.start()
        async with httpx.AsyncClient() as client:
            name = fresh_name()
            await register(client, b, name)
            session = await login(client, b, name)
            assert (await verifier.verify(session.access_token)).username == name
            logout = await client.post(f"{c.url}/auth/logout", headers=session.headers)
            assert logout.status_code == 204
            started = time.monotonic()
            while True:
                try:
                    await verifier.verify(session.access_token)
                except InvalidToken as exc:
                    assert exc.reason == "revoked"
                    break
                assert time.monotonic() - started < 1, "the feed did not carry the logout"
                await asyncio.sleep(0.002)
    finally:
        await verifier.aclose()
        await feed.aclose()


# -- losing Redis, and losing everything ----------------------------------------------------


@pytest.mark.parametrize("outage", ["connection cut", "redis lost its data"])
async def test_an_instance_that_lost_redis_catches_up_before_trusting_tokens(
    lone_cluster: Cluster, outage: str
) -> None:
    user = RedisUser(lone_cluster.prefix)
    try:
        a = lone_cluster.start()
        b = lone_cluster.start(JWTAUTH_REDIS_URL=user.url)
        async with httpx.AsyncClient() as client:
            name = fresh_name()
            await register(client, a, name)
            session = await login(client, a, name)
            assert await me(client, b, session) == 200
            assert user.cut() >= 1  # B's Redis connections die; it cannot reconnect
            logout = await client.post(f"{a.url}/auth/logout", headers=session.headers)
            assert logout.status_code == 204
            if outage == "redis lost its data":
                a.stop()  # nobody but B itself can bring the logout back from the database
                lose_data(lone_cluster.prefix)
            await asyncio.sleep(0.3)
            # The gap is real: with its database poll at 60 s, B has not heard of it.
            assert await me(client, b, session) == 200
            user.restore()
            await refused_within(client, b, session, within=1.0)
    finally:
        user.drop()


async def test_an_instance_cut_off_from_redis_and_postgresql_refuses_every_token(
    lone_cluster: Cluster,
) -> None:
    role = "t_role_" + secrets.token_hex(4)
    schema = lone_cluster.schema
    user = RedisUser(lone_cluster.prefix)
    role_made = False
    try:
        a = lone_cluster.start()
        role_made = True
        await _sql(
            f'CREATE ROLE "{role}" LOGIN',
            f'GRANT CREATE, CONNECT ON DATABASE test TO "{role}"',
            f'GRANT ALL ON SCHEMA "{schema}" TO "{role}"',
            f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
            f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
        )
        database_url = POSTGRES_URL.replace("postgres@", f"{role}@", 1)
        b = lone_cluster.start(
            JWTAUTH_REDIS_URL=user.url, JWTAUTH_DATABASE_URL=database_url,
            JWTAUTH_REVOCATION_POLL_INTERVAL="0.25", JWTAUTH_REVOCATION_MAX_STALENESS="1",
        )
        async with httpx.AsyncClient() as client:
            name = fresh_name()
            await register(client, a, name)
            session = await login(client, a, name)
            assert await me(client, b, session) == 200
            user.cut()
            await _sql(
                f'ALTER ROLE "{role}" NOLOGIN',
                # The role name is the test's own, made by redis_kit-style fresh naming.
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                f"WHERE usename = '{role}'",
            )
            await refused_within(client, b, session, within=5.0)  # the bound is at least 3 s
            assert await me(client, a, session) == 200  # A still knows it is current
            await _sql(f'ALTER ROLE "{role}" LOGIN')
            user.restore()
            started = time.monotonic()
            while await me(client, b, session) != 200:
                assert time.monotonic() - started < 3, "B did not recover"
                await asyncio.sleep(0.02)
    finally:
        user.drop()
        for live in lone_cluster.instances:
            live.stop()
        if role_made:
            await _sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', f'DROP OWNED BY "{role}"',
                       f'DROP ROLE IF EXISTS "{role}"')

