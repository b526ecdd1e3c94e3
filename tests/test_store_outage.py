"""The store going away is a 503, not a 500 (issue 13, point 12; store/outage.py,
web/outage.py): a real `jwtauth serve` on PostgreSQL reached through a TCP proxy that
the test cuts. Every write (login, refresh, logout, registration) answers 503
``unavailable`` with ``Retry-After`` over the same keep-alive connection, token checks go
on from memory, the outage is logged once when it starts and once when it ends (no
traceback), and the server serves again when the database is back."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tcp_proxy import TcpProxy

from conftest import (
    PASSWORD,
    POSTGRES_URL,
    LiveProcess,
    _drop_schema,
    _probe_postgres,
    free_port,
    server_env,
    start_process,
    unavailable,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[tuple[LiveProcess, TcpProxy]]:
    error = asyncio.run(_probe_postgres())
    if error:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", error)
    target = urlsplit(POSTGRES_URL)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432), free_port())
    proxy.start()
    schema = "t_" + uuid.uuid4().hex[:16]
    through_proxy = POSTGRES_URL.replace(f":{target.port or 5432}/", f":{proxy.port}/", 1)
    env = server_env(tmp_path / "unused.db")
    env.update(JWTAUTH_DATABASE_URL=through_proxy, JWTAUTH_DATABASE_SCHEMA=schema,
               JWTAUTH_ISSUER="https://outage.test")
    port = free_port()
    live = start_process(["-m", "jwtauth", "serve", "--port", str(port)], env,
                         f"http://127.0.0.1:{port}", tmp_path / "server.log", "/healthz")
    try:
        yield live, proxy
    finally:
        live.stop()
        proxy.close()
        asyncio.run(_drop_schema(schema))


class KeepAlive:
    """One HTTP/1.1 connection; fails if the server ever closes it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.conn.connect()
        self.sock = self.conn.sock

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        self.conn.request(method, path, body=None if body is None else json.dumps(body),
                          headers=sent)
        response = self.conn.getresponse()
        raw = response.read()
        assert not response.will_close, f"{method} {path}: the server closed the connection"
        assert self.conn.sock is self.sock
        headers_lower = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers_lower, json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def log_records(live: LiveProcess) -> list[dict[str, Any]]:
    records = []
    for line in live.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_writes_answer_503_over_the_same_connection_while_postgresql_is_away(
    proxied_server: tuple[LiveProcess, TcpProxy],
) -> None:
    live, proxy = proxied_server
    client = KeepAlive(live.url)
    try:
        assert client.call("POST", "/auth/register",
                           {"username": "alice", "password": PASSWORD})[0] == 201
        status, _, tokens = client.call("POST", "/auth/login",
                                        {"username": "alice", "password": PASSWORD})
        assert status == 200
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        proxy.stop()
        writes = [
            ("POST", "/auth/login", {"username": "alice", "password": PASSWORD}, {}),
            ("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, {}),
            ("POST", "/auth/logout", None, bearer),
            ("POST", "/auth/register", {"username": "bob", "password": PASSWORD}, {}),
            ("GET", "/auth/sessions", None, bearer),
            ("GET", "/posts", None, {}),
        ]
        for _round in range(3):
            for method, path, body, headers in writes:
                status, answer_headers, answer = client.call(method, path, body, headers)
                assert status == 503, (method, path, answer)
                assert answer["error"] == "unavailable", answer
                assert int(answer_headers["retry-after"]) >= 1
            # Token checks need no database: they go on.
            assert client.call("GET", "/users/me", None, bearer)[0] == 200
        assert client.call("GET", "/healthz")[0] == 503

        proxy.start()
        deadline = time.monotonic() + 15
        while client.call("GET", "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.1)
        status, _, again = client.call("POST", "/auth/refresh",
                                       {"refresh_token": tokens["refresh_token"]})
        assert status == 200, again
    finally:
        client.close()

    records = log_records(live)
    messages = [r["message"] for r in records]
    assert sum(m.startswith("store unavailable") for m in messages) == 1, messages
    assert sum(m.startswith("store available again") for m in messages) == 1, messages
    assert not [r for r in records if r["level"] == "ERROR"], messages
    assert "Traceback" not in live.output()
