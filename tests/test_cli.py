"""The operator's command line, run for real: ``python -m jwtauth ...`` in a subprocess."""

from __future__ import annotations

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

import pytest

from conftest import PASSWORD

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
        umask: int = -1,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jwtauth", *args],
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
