"""The operator's command line, run for real: ``python -m jwtauth ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from jwtauth.server.accounts.rules import ROLE_MESSAGE, USERNAME_MESSAGE

from conftest import PASSWORD, Api, Backend

Run = Callable[..., subprocess.CompletedProcess[str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "j.db"


@pytest.fixture
def run(tmp_path: Path, db_path: Path) -> Run:
    """Run the CLI in ``tmp_path`` with only this test's JWTAUTH_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    base["JWTAUTH_DATABASE_URL"] = f"sqlite:///{db_path}"
    base["JWTAUTH_ARGON2_MEMORY_COST"] = "8192"
    base["JWTAUTH_ARGON2_TIME_COST"] = "1"

    def run(
        *args: str, input: str | None = None, env: dict[str, str] | None = None,
        umask: int = -1, module: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *(["-m", "jwtauth"] if module else []), *args],
            cwd=tmp_path, env={**base, **(env or {})}, input=input, capture_output=True,
            text=True, timeout=60, check=False, umask=umask,
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The error output of a command that must fail cleanly (no traceback)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def listed_roles(run: Run) -> dict[str, str]:
    """``user list`` as {username: comma-separated roles}."""
    rows = [line.split() for line in ok(run("user", "list")).splitlines() if line.strip()]
    return {row[1]: row[2] for row in rows}


def create_bob(run: Run, *roles: str) -> None:
    flags = [arg for role in roles for arg in ("--role", role)]
    ok(run("user", "create", "bob", *flags, "--password-stdin", input=PASSWORD + "\n"))


# -- help -------------------------------------------------------------------------------

COMMANDS = [
    [], ["serve"], ["user"], ["user", "create"], ["user", "list"], ["user", "set-roles"],
    ["user", "delete"], ["db"], ["db", "upgrade"], ["secret"], ["audit"], ["audit", "tail"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "main" for c in COMMANDS])
def test_help_exits_0(run: Run, command: list[str]) -> None:
    out = ok(run(*command, "--help"))
    assert out.startswith("Usage:")
    assert " ".join(command) in out.splitlines()[0]


def test_main_help_lists_the_commands(run: Run) -> None:
    out = ok(run("--help"))
    for command in ("serve", "user", "db", "secret"):
        assert re.search(rf"^\s+{command}\b", out, re.MULTILINE), out


def test_serve_help_lists_host_and_port(run: Run) -> None:
    out = ok(run("serve", "--help"))
    assert "--host" in out and "--port" in out


# -- secret -----------------------------------------------------------------------------


def test_secret_prints_a_long_url_safe_secret(run: Run) -> None:
    secret = ok(run("secret")).strip()
    assert len(secret) >= 43
    assert re.fullmatch(r"[A-Za-z0-9_-]+", secret)


def test_secret_differs_each_time(run: Run) -> None:
    assert ok(run("secret")).strip() != ok(run("secret")).strip()


# -- db upgrade -------------------------------------------------------------------------


def test_db_upgrade_creates_the_tables(run: Run, db_path: Path) -> None:
    ok(run("db", "upgrade"))
    with closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in rows}
    assert {"users", "sessions", "refresh_tokens", "signing_keys", "posts"} <= tables


def test_db_upgrade_twice_is_harmless(run: Run) -> None:
    ok(run("db", "upgrade"))
    ok(run("db", "upgrade"))


def test_database_and_key_file_are_owner_only(run: Run, db_path: Path) -> None:
    # Even with a umask that would let everyone read new files.
    ok(run("db", "upgrade", umask=0))
    key_file = db_path.with_name("j.db.key")
    for path in (db_path, key_file):
        assert path.exists(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- user create / list / set-roles / delete --------------------------------------------


def test_user_create_with_role_then_list_shows_it(run: Run) -> None:
    result = run("user", "create", "bob", "--role", "admin", "--password-stdin",
                 input=PASSWORD + "\n")
    assert "bob" in ok(result)
    assert listed_roles(run) == {"bob": "user,admin"}


def test_user_set_roles_replaces_the_roles(run: Run) -> None:
    create_bob(run, "admin")
    ok(run("user", "set-roles", "bob", "user", "editor"))
    assert listed_roles(run) == {"bob": "user,editor"}


def test_user_delete_with_yes_removes_the_user(run: Run) -> None:
    create_bob(run)
    ok(run("user", "delete", "bob", "--yes"))
    assert listed_roles(run) == {}


def test_user_delete_without_confirmation_keeps_the_user(run: Run) -> None:
    create_bob(run)
    refused(run("user", "delete", "bob", input="n\n"))
    assert listed_roles(run) == {"bob": "user"}


@pytest.mark.parametrize("command", [["set-roles", "ghost", "user"], ["delete", "ghost", "--yes"]])
def test_user_commands_on_unknown_user_fail_clearly(run: Run, command: list[str]) -> None:
    ok(run("db", "upgrade"))
    assert "ghost" in refused(run("user", *command))


@pytest.mark.parametrize("password", ["password", "short1", "bob"], ids=["common", "short", "name"])
def test_user_create_refuses_a_weak_password(run: Run, password: str) -> None:
    result = run("user", "create", "bob", "--password-stdin", input=password + "\n")
    assert "password" in refused(result).lower()
    assert listed_roles(run) == {}


def test_user_create_refuses_a_taken_name(run: Run) -> None:
    create_bob(run)
    result = run("user", "create", "bob", "--password-stdin", input=PASSWORD + "\n")
    assert "taken" in refused(result).lower()


# -- serve refuses unsafe configurations ------------------------------------------------


@pytest.mark.parametrize(
    "secret", ["too-short-secret", "ab" * 24], ids=["short", "repetitive"]
)
def test_serve_refuses_hs256_with_a_weak_secret(run: Run, secret: str) -> None:
    env = {"JWTAUTH_ALGORITHM": "HS256", "JWTAUTH_SECRET": secret}
    result = run("serve", "--port", str(free_port()), env=env)
    error = refused(result)
    assert "JWTAUTH_SECRET" in error
    assert secret not in error + result.stdout


def test_serve_refuses_hs256_without_a_secret(run: Run) -> None:
    result = run("serve", "--port", str(free_port()), env={"JWTAUTH_ALGORITHM": "HS256"})
    assert "JWTAUTH_SECRET" in refused(result)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["644", "640", "604"])
def test_serve_refuses_a_key_file_others_can_read(run: Run, db_path: Path, mode: int) -> None:
    ok(run("db", "upgrade"))  # builds the service, which creates the key file
    key_file = db_path.with_name("j.db.key")
    key_file.chmod(mode)
    error = refused(run("serve", "--port", str(free_port())))
    assert "j.db.key" in error
    assert "chmod 600" in error


def test_serve_refuses_a_short_key_encryption_key(run: Run) -> None:
    kek = "short-kek-value"
    result = run("serve", "--port", str(free_port()), env={"JWTAUTH_KEY_ENCRYPTION_KEY": kek})
    error = refused(result)
    assert "JWTAUTH_KEY_ENCRYPTION_KEY" in error
    assert kek not in error + result.stdout


@pytest.mark.parametrize("mode", [0o620, 0o602], ids=["group-writable", "world-writable"])
def test_serve_refuses_a_key_file_others_can_write(run: Run, db_path: Path, mode: int) -> None:
    # Whoever can replace the key-encryption key can make the server seal new keys with it.
    ok(run("db", "upgrade"))
    key_file = db_path.with_name("j.db.key")
    key_file.chmod(mode)
    assert "chmod 600" in refused(run("serve", "--port", str(free_port())))


def test_serve_refusal_names_no_key_material(run: Run, db_path: Path) -> None:
    ok(run("db", "upgrade"))
    key_file = db_path.with_name("j.db.key")
    key_file.chmod(0o644)
    result = run("serve", "--port", str(free_port()))
    refused(result)
    assert key_file.read_text().strip() not in result.stderr + result.stdout


# -- domain rules: the same as the API's ---------------------------------------------------


@pytest.mark.parametrize("name", ["a b/c", "ab", "bob\n", "ålice"], ids=repr)
def test_user_create_refuses_a_username_the_api_refuses(run: Run, name: str) -> None:
    result = run("user", "create", name, "--password-stdin", input=PASSWORD + "\n")
    assert USERNAME_MESSAGE in refused(result)
    assert listed_roles(run) == {}


@pytest.mark.parametrize("role", ["editor,admin", "two words", "", "x" * 65], ids=repr)
def test_user_roles_the_api_refuses_are_refused(run: Run, role: str) -> None:
    # A comma would reach a proxy as two roles in X-Auth-Roles ("editor", "admin").
    create_bob(run)
    assert ROLE_MESSAGE in refused(run("user", "set-roles", "bob", "user", role))
    assert listed_roles(run) == {"bob": "user"}
    result = run("user", "create", "carol", "--role", role, "--password-stdin",
                 input=PASSWORD + "\n")
    assert ROLE_MESSAGE in refused(result)
    assert listed_roles(run) == {"bob": "user"}


async def test_cli_and_api_refuse_with_the_same_message(
    api: Api, backend: Backend, run: Run
) -> None:
    # The CLI on the API's own database: both entry points, one rule, one message.
    env = {"JWTAUTH_DATABASE_URL": backend.overrides["database_url"]}
    if "database_schema" in backend.overrides:
        env["JWTAUTH_DATABASE_SCHEMA"] = backend.overrides["database_schema"]
    response = await api.client.post(
        "/auth/register", json={"username": "a b/c", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request", "message": USERNAME_MESSAGE, "field": "username",
    }
    cli = run("user", "create", "a b/c", "--password-stdin", input=PASSWORD + "\n", env=env)
    assert refused(cli).strip() == f"Error: {USERNAME_MESSAGE}"

    admin = await api.admin()
    user = await api.signup("bob")
    bob = (await api.client.get("/users/me", headers=user.headers)).json()["id"]
    patched = await api.client.patch(
        f"/admin/users/{bob}", json={"roles": ["user", "editor,admin"]}, headers=admin.headers
    )
    assert patched.status_code == 422
    assert patched.json() == {"error": "invalid_request", "message": ROLE_MESSAGE, "field": "roles"}
    cli = run("user", "set-roles", "bob", "user", "editor,admin", env=env)
    assert refused(cli).strip() == f"Error: {ROLE_MESSAGE}"
    # Neither changed anything: the proxy still reads one role.
    fresh = (await api.client.post("/auth/refresh", json={"refresh_token": user.refresh_token}))
    bearer = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    check = await api.client.get("/auth/check", headers=bearer)
    assert check.status_code == 204
    assert check.headers["x-auth-roles"] == "user"


# -- each command builds only what it needs ------------------------------------------------

# Runs the CLI and, at exit, writes what the process did: the threads that ran Python code,
# the addresses it connected to (the interpreter's own audit events) and whether it loaded
# argon2 or redis. (Not bcrypt: cryptography's SSH key support imports it.)
PROBE = """
import atexit, json, os, sys, threading
threads, connects = set(), []
threading.setprofile(lambda *_: threads.add(threading.current_thread().name))
sys.addaudithook(lambda event, args: connects.append(list(args[1])) if event == "socket.connect"
                 and isinstance(args[1], tuple) else None)
@atexit.register
def report():
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"argon2", "redis"})
    with open(os.environ["PROBE_REPORT"], "w") as out:
        json.dump({"threads": sorted(threads), "connects": connects, "loaded": loaded}, out)
from jwtauth.server.cli import main
main(prog_name="jwtauth")
"""


@pytest.fixture
def probe(tmp_path: Path, run: Run) -> Callable[..., tuple[subprocess.CompletedProcess[str], Any]]:
    """Run a command under PROBE, with JWTAUTH_REDIS_URL on a port where nothing listens."""
    redis_port = free_port()
    report = tmp_path / "probe.json"

    def probe(*args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess[str], Any]:
        env = {"JWTAUTH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "PROBE_REPORT": str(report)}
        result = run("-c", PROBE, *args, input=input, env=env, module=False)
        seen = json.loads(report.read_text())
        seen["redis_connects"] = [c for c in seen["connects"] if c[1:2] == [redis_port]]
        return result, seen

    return probe


def hash_threads(seen: Any) -> list[str]:
    return [name for name in seen["threads"] if name.startswith("jwtauth-hash")]


@pytest.mark.parametrize("command", [["db", "upgrade"], ["keys", "list"]], ids=" ".join)
def test_storage_commands_build_no_hasher_and_no_redis_client(
    probe: Any, command: list[str]
) -> None:
    result, seen = probe(*command)
    ok(result)
    assert "redis" not in (result.stdout + result.stderr).lower()
    assert seen["redis_connects"] == []
    assert hash_threads(seen) == []
    assert seen["loaded"] == []


def test_the_probe_sees_a_hasher_and_a_redis_client_where_they_are_needed(probe: Any) -> None:
    # The other side of the test above: the same probe sees both when a command uses them.
    result, seen = probe("user", "create", "bob", "--password-stdin", input=PASSWORD + "\n")
    ok(result)
    assert hash_threads(seen) and "argon2" in seen["loaded"]
    assert seen["redis_connects"] == []  # creating a user revokes nothing
    result, seen = probe("user", "delete", "bob", "--yes")
    ok(result)
    assert "redis" in seen["loaded"] and seen["redis_connects"]
    assert "Redis" in result.stderr  # its revocation could not be published there
    assert hash_threads(seen) == [] and "argon2" not in seen["loaded"]
