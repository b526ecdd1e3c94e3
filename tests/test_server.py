"""Smoke test of a real ``jwtauth serve`` process over TCP (SQLite only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from conftest import PASSWORD

STARTUP_LIMIT = 20.0  # seconds for a server to answer /healthz


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


StartServer = Callable[..., Server]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'j.db'}"


def cli_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env.update(
        JWTAUTH_DATABASE_URL=db_url,
        JWTAUTH_COOKIE_SECURE="false",
        JWTAUTH_ARGON2_MEMORY_COST="8192",
        JWTAUTH_ARGON2_TIME_COST="1",
    )
    return env


@pytest.fixture
def start_server(tmp_path: Path, db_url: str) -> Iterator[StartServer]:
    """Start ``jwtauth serve`` and wait until it is healthy; every one is stopped after."""
    started: list[tuple[Server, object]] = []

    def start(
        cwd: Path = tmp_path, *, port: int | None = None, env: dict[str, str] | None = None
    ) -> Server:
        cwd.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        log = tmp_path / f"serve-{len(started)}-{port}.log"
        out = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "jwtauth", "serve", "--port", str(port)],
            cwd=cwd, env={**cli_env(db_url), **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        started.append((server, out))
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            assert process.poll() is None, f"serve exited early:\n{server.output()}"
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling for readiness, not waiting for an expiry
        pytest.fail(f"serve did not become healthy in {STARTUP_LIMIT} s:\n{server.output()}")

    yield start
    for server, out in reversed(started):
        stop(server)
        out.close()  # type: ignore[attr-defined]


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def login(client: httpx.Client, username: str = "alice") -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_serve_prints_where_it_listens(start_server: StartServer) -> None:
    server = start_server()
    assert server.url.removeprefix("http://") in server.output()


def test_register_login_me_refresh_logout_over_tcp(start_server: StartServer) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url) as client:
        health = client.get("/healthz")
        assert health.json() == {"status": "ok"}
        registered = client.post(
            "/auth/register", json={"username": "alice", "password": PASSWORD}
        )
        assert registered.status_code == 201
        user = registered.json()
        tokens = login(client)
        assert client.cookies.get("refresh_token") == tokens["refresh_token"]
        me = client.get("/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200
        assert me.json()["id"] == user["id"]

        refreshed = client.post("/auth/refresh")  # the cookie flow
        assert refreshed.status_code == 200, refreshed.text
        assert "refresh_token" not in refreshed.json()
        rotated = client.cookies.get("refresh_token")
        assert rotated and rotated != tokens["refresh_token"]
        access = refreshed.json()["access_token"]
        assert client.get("/users/me", headers=bearer(access)).status_code == 200

        assert client.post("/auth/logout", headers=bearer(access)).status_code == 204
        assert not client.cookies.get("refresh_token")
        after = client.get("/users/me", headers=bearer(access))
        assert after.status_code == 401
        assert after.json()["error"] == "invalid_token"
        again = client.post("/auth/refresh", json={"refresh_token": rotated})
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_grant"


def test_a_restarted_server_keeps_its_key_and_tokens(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = start_server()
    with httpx.Client(base_url=first.url) as client:
        client.post("/auth/register", json={"username": "alice", "password": PASSWORD})
        before = login(client)
        published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert kid(before["access_token"]) in published
    stop(first)

    # Another working directory: the keys live with the database, not beside the process.
    # The same port, so the default issuer (derived from the address) is the same too.
    second = start_server(tmp_path / "elsewhere", port=int(first.url.rsplit(":", 1)[1]))
    with httpx.Client(base_url=second.url) as client:
        after = login(client)
        assert kid(after["access_token"]) == kid(before["access_token"])
        keys = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
        assert keys == published
        me = client.get("/users/me", headers=bearer(before["access_token"]))
        assert me.status_code == 200, me.text
        refreshed = client.post("/auth/refresh", json={"refresh_token": before["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text


def assert_interchangeable(first: Server, second: Server) -> None:
    with httpx.Client(base_url=first.url) as one, httpx.Client(base_url=second.url) as two:
        registered = one.post("/auth/register", json={"username": "alice", "password": PASSWORD})
        assert registered.status_code == 201
        from_one, from_two = login(one), login(two)
        assert kid(from_one["access_token"]) == kid(from_two["access_token"])
        for client in (one, two):
            for tokens in (from_one, from_two):
                me = client.get("/users/me", headers=bearer(tokens["access_token"]))
                assert me.status_code == 200, me.text


def test_two_servers_with_one_issuer_accept_each_others_tokens(
    start_server: StartServer, tmp_path: Path
) -> None:
    issuer = {"JWTAUTH_ISSUER": "https://auth.example"}
    first = start_server(tmp_path / "one", env=issuer)
    second = start_server(tmp_path / "two", env=issuer)
    assert_interchangeable(first, second)


def test_two_servers_on_two_ports_with_default_settings_accept_each_others_tokens(
    start_server: StartServer, tmp_path: Path
) -> None:
    # API.md "Running": instances sharing a database issue interchangeable tokens.
    first = start_server(tmp_path / "one")
    second = start_server(tmp_path / "two")
    assert_interchangeable(first, second)


def test_a_user_created_with_the_cli_can_log_in(
    start_server: StartServer, tmp_path: Path, db_url: str
) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "jwtauth", "user", "create", "root", "--role", "admin",
         "--password-stdin"],
        cwd=tmp_path, env=cli_env(db_url), input=PASSWORD + "\n", capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert created.returncode == 0, created.stderr
    server = start_server()
    with httpx.Client(base_url=server.url) as client:
        tokens = login(client, "root")
        users = client.get("/admin/users", headers=bearer(tokens["access_token"]))
        assert users.status_code == 200, users.text
        assert [u["roles"] for u in users.json()] == [["user", "admin"]]


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    start_server: StartServer, trusted: bool
) -> None:
    env = {"JWTAUTH_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {}
    server = start_server(env=env)
    bad = {"username": "alice", "password": "wrong-password-1"}
    with httpx.Client(base_url=server.url) as client:
        client.post("/auth/register", json={"username": "alice", "password": PASSWORD})
        for _ in range(6):
            client.post("/auth/login", json=bad, headers={"X-Forwarded-For": "203.0.113.7"})
        other = client.post(
            "/auth/login", json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.9"},
        )
    # Trusted: the failures belong to 203.0.113.7, so another client still signs in.
    # Untrusted: the header is ignored and every request is the proxy's (127.0.0.1).
    assert other.status_code == (200 if trusted else 429), other.text
