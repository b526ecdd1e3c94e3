"""Secret hygiene (issue 4.4): no token, password, password hash or private key ever
appears in a log line or an error body.

The whole flow runs with logging at DEBUG for every logger, once in process (every
record captured, rendered with its extra fields) and once against a real `jwtauth serve`
with JWTAUTH_LOG_LEVEL=DEBUG (its whole stderr captured). Then every value the flow
used or the server stored is looked for in all of it.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from jwtauth.keys import KeyState
from jwtauth.server.keys import KeyCipher, load_private_pem
from jwtauth.server.logs import JsonFormatter

from conftest import PASSWORD, Api, AppFactory, free_port, server_env, start_process

NEW_PASSWORD = "brand-new-passphrase-77"
WRONG_PASSWORDS = ["wrong-guess-password-1", "wrong-guess-password-2"]
# Passwords in requests that fail validation: each must stay out of the 4xx body.
INVALID_PASSWORDS = ["S3cr!t7", "too-long-secret-" + "x" * 1100, "password123"]
HS256_SECRET = "hs256-test-secret-" + base64.urlsafe_b64encode(b"0123456789abcdef" * 3).decode()
ALGORITHMS = ["ES256", "HS256"]


@dataclass
class Evidence:
    """What must stay secret, and everything the outside could see."""

    secrets: set[str] = field(default_factory=set)
    error_bodies: list[str] = field(default_factory=list)

    def keep(self, *values: str | None) -> None:
        self.secrets.update(v for v in values if v)

    def saw(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            self.error_bodies.append(
                f"{response.status_code} {response.text} "
                f"{response.headers.get('www-authenticate', '')}"
            )
        return response


def assert_nothing_secret(evidence: Evidence, where: str, text: str) -> None:
    assert len(evidence.secrets) > 10
    for secret in evidence.secrets:
        assert len(secret) >= 7, secret
        assert secret not in text, f"a secret ({secret[:12]}...) appears in {where}"


async def run_flow(client: httpx.AsyncClient, evidence: Evidence, *, rotate: bool) -> None:
    """Every request kind of the contract that carries a secret, with its failures."""
    ev = evidence
    ev.keep(PASSWORD, NEW_PASSWORD, *WRONG_PASSWORDS, *INVALID_PASSWORDS)

    def tokens(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        ev.keep(body["access_token"], body.get("refresh_token"))
        ev.keep(client.cookies.get("refresh_token"))
        return body

    def bearer(body: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def post(path: str, **kwargs: Any) -> httpx.Response:
        return ev.saw(await client.post(path, **kwargs))

    assert (await post("/auth/register", json={"username": "alice", "password": PASSWORD})
            ).status_code == 201
    # Validation errors with a password in the request.
    for bad in INVALID_PASSWORDS:
        response = await post("/auth/register", json={"username": "alice2", "password": bad})
        assert response.status_code == 422
    assert (await post("/auth/register", json={"username": "a!", "password": PASSWORD})
            ).status_code == 422
    assert (await post("/auth/register", json={"username": "bob1", "password": [PASSWORD]})
            ).status_code == 422
    truncated = f'{{"username":"alice","password":"{PASSWORD}"'.encode()
    response = await post("/auth/login", content=truncated,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    # Failed logins, for a real account and an unknown one.
    for name, wrong in zip(("alice", "ghost"), WRONG_PASSWORDS, strict=True):
        response = await post("/auth/login", json={"username": name, "password": wrong})
        assert response.status_code == 401

    first = tokens(await post("/auth/login", json={"username": "alice", "password": PASSWORD}))
    assert ev.saw(await client.get("/users/me", headers=bearer(first))).status_code == 200
    by_cookie = tokens(await post("/auth/refresh"))
    assert "refresh_token" not in by_cookie
    by_body = tokens(await post("/auth/refresh",
                                json={"refresh_token": client.cookies.get("refresh_token")}))
    # Reuse of the first refresh token: the family is revoked.
    assert (await post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
            ).status_code == 401
    for revoked in (first, by_body, by_cookie):
        assert ev.saw(await client.get("/users/me", headers=bearer(revoked))).status_code == 401
    # A token in the query string is not accepted (and must not be logged with the URL).
    query = await client.get("/users/me", params={"access_token": by_body["access_token"]})
    assert ev.saw(query).status_code == 401

    second = tokens(await post("/auth/login", json={"username": "alice", "password": PASSWORD}))
    wrong_current = await post("/auth/password", headers=bearer(second),
                               json={"current_password": WRONG_PASSWORDS[0],
                                     "new_password": NEW_PASSWORD})
    assert wrong_current.status_code == 403
    weak_new = await post("/auth/password", headers=bearer(second),
                          json={"current_password": PASSWORD, "new_password": "password"})
    assert weak_new.status_code == 422
    changed = await post("/auth/password", headers=bearer(second),
                         json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 204
    third = tokens(await post("/auth/login", json={"username": "alice",
                                                   "password": NEW_PASSWORD}))
    assert (await post("/auth/logout", headers=bearer(third))).status_code == 204
    fourth = tokens(await post("/auth/login", json={"username": "alice",
                                                    "password": NEW_PASSWORD}))
    assert (await post("/auth/logout-all", headers=bearer(fourth))).status_code == 204
    assert (await post("/auth/logout", headers=bearer(fourth))).status_code == 401

    admin = tokens(await post("/auth/login", json={"username": "root", "password": PASSWORD}))
    users = ev.saw(await client.get("/admin/users", headers=bearer(admin))).json()
    alice_id = next(u["id"] for u in users if u["username"] == "alice")
    patched = ev.saw(await client.patch(f"/admin/users/{alice_id}", headers=bearer(admin),
                                        json={"roles": ["user", "editor"]}))
    assert patched.status_code == 200
    rotated = await post("/admin/keys/rotate", headers=bearer(admin))
    assert rotated.status_code == (200 if rotate else 409)
    assert ev.saw(await client.get("/admin/audit", headers=bearer(admin))).status_code == 200
    plain = tokens(await post("/auth/login", json={"username": "alice", "password": NEW_PASSWORD}))
    assert ev.saw(await client.get("/admin/audit", headers=bearer(plain))).status_code == 403


def key_material(stored_rows: list[tuple[str, str, str]], kek: bytes | None) -> Iterator[str]:
    """Each private key's stored form, PEM body lines and JWK ``d``."""
    for kid, alg, stored in stored_rows:
        yield stored
        pem = KeyCipher(kek).open(kid, stored) if kek is not None else stored
        yield from (line for line in pem.splitlines() if line and not line.startswith("-----"))
        key = load_private_pem(pem, kid=kid, alg=alg, state=KeyState.CURRENT)  # type: ignore[arg-type]
        yield str(key.jwk.as_dict(private=True)["d"])


def hash_parts(hashes: list[str]) -> Iterator[str]:
    for stored in hashes:
        yield stored
        yield stored.rsplit("$", 1)[-1]  # the digest itself


def kek_file_material(path: Path) -> Iterator[str]:
    if path.exists():
        text = path.read_text().strip()
        yield text
        yield base64.urlsafe_b64decode(text).hex()


# -- in process: every logger at DEBUG, every record captured ---------------------------


@pytest.fixture
def all_loggers_at_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("jwtauth", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.engine.Engine",
                 "sqlalchemy.pool", "aiosqlite", "asyncpg", "httpx", "httpcore", "uvicorn",
                 "alembic", "asyncio", *logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "disabled", False)
    return caplog


def rendered(records: list[logging.LogRecord]) -> str:
    """Each record as `jwtauth serve` writes it (message, extra fields, traceback), and
    its raw message and arguments besides."""
    formatter = JsonFormatter()
    return "\n".join(
        f"{formatter.format(r)}\n{r.getMessage()}\n{r.msg!r} {r.args!r} {vars(r)!r}"
        for r in records
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_no_secret_in_logs_or_error_bodies_in_process(
    make_api: AppFactory, all_loggers_at_debug: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], algorithm: str,
) -> None:
    overrides: dict[str, Any] = {"algorithm": algorithm}
    if algorithm == "HS256":
        overrides["secret"] = HS256_SECRET
    api: Api = await make_api(**overrides)
    await api.service.register("root", PASSWORD, roles=["user", "admin"])
    evidence = Evidence()
    evidence.keep(HS256_SECRET)
    await run_flow(api.client, evidence, rotate=algorithm != "HS256")

    async with api.server.db.connect() as conn:
        hashes = list((await conn.execute(sa.text("SELECT password_hash FROM users"))).scalars())
        keys = [tuple(r) for r in await conn.execute(
            sa.text("SELECT kid, alg, private_key FROM signing_keys"))]
    evidence.keep(*hash_parts(hashes))
    kek = None
    if api.server.db.sqlite_path is not None:
        kek_path = api.server.db.sqlite_path.with_name(api.server.db.sqlite_path.name + ".key")
        evidence.keep(*kek_file_material(kek_path))
        kek = base64.urlsafe_b64decode(kek_path.read_text().strip())
    evidence.keep(*key_material(keys, kek))  # type: ignore[arg-type]
    assert len(keys) == (2 if algorithm == "ES256" else 0)

    # The test's own HTTP client logs each URL it requests, the query-string token
    # included: that line is the client's, not the server's.
    records = [
        r for r in all_loggers_at_debug.records
        if not (r.name == "httpx" and r.getMessage().startswith("HTTP Request: "))
    ]
    # Not vacuous: the DEBUG firehose and the audit lines were captured.
    assert any(r.levelno == logging.DEBUG for r in records)
    assert any(getattr(r, "event", None) == "refresh_token_reused" for r in records)
    captured = capfd.readouterr()
    assert_nothing_secret(evidence, "the log records", rendered(records))
    assert_nothing_secret(evidence, "stdout/stderr", captured.out + captured.err)
    assert len(evidence.error_bodies) >= 15
    assert_nothing_secret(evidence, "an error body", "\n".join(evidence.error_bodies))


# -- a real `jwtauth serve` with JWTAUTH_LOG_LEVEL=DEBUG ---------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_no_secret_in_the_logs_of_a_real_server_at_debug(
    tmp_path: Path, algorithm: str
) -> None:
    database = tmp_path / "jwtauth.db"
    port = free_port()
    env = server_env(database)
    env.update(JWTAUTH_LOG_LEVEL="DEBUG", JWTAUTH_COOKIE_SECURE="false",
               JWTAUTH_ALGORITHM=algorithm)
    if algorithm == "HS256":
        env["JWTAUTH_SECRET"] = HS256_SECRET
    created = subprocess.run(
        [sys.executable, "-m", "jwtauth", "user", "create", "root", "--role", "admin",
         "--password-stdin"], input=PASSWORD + "\n", env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=True,
    )
    live = start_process(["-m", "jwtauth", "serve", "--port", str(port)], env,
                         f"http://127.0.0.1:{port}", tmp_path / "server.log", "/healthz")
    evidence = Evidence()
    evidence.keep(HS256_SECRET)
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            await run_flow(client, evidence, rotate=algorithm != "HS256")
    finally:
        live.stop()
    log = live.log.read_text(errors="replace")

    with closing(sqlite3.connect(database)) as conn:
        hashes = [row[0] for row in conn.execute("SELECT password_hash FROM users")]
        keys = list(conn.execute("SELECT kid, alg, private_key FROM signing_keys"))
    kek_path = database.with_name("jwtauth.db.key")
    evidence.keep(*hash_parts(hashes), *kek_file_material(kek_path))
    evidence.keep(*key_material(keys, base64.urlsafe_b64decode(kek_path.read_text().strip())))
    assert len(keys) == (2 if algorithm == "ES256" else 0)

    # Not vacuous: DEBUG lines and the audit events are in the server's output, as JSON.
    assert '"level": "DEBUG"' in log
    assert '"event": "refresh_token_reused"' in log
    assert_nothing_secret(evidence, "the server's output", log)
    assert_nothing_secret(evidence, "the CLI's output", created.stdout + created.stderr)
    assert_nothing_secret(evidence, "an error body", "\n".join(evidence.error_bodies))
