"""The SQLite database is for the server's user only (issue 13, point 9; server/files.py):
`serve` and every other entry point refuse a database, -wal or -shm file that group or
others can open, naming the chmod that fixes it, like the key file; and the files
SQLite creates beside a 0600 database are 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from jwtauth.errors import ConfigError
from jwtauth.server.store import create_database

from conftest import free_port


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def jwtauth(db: Path, *args: str, umask: int = -1) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env["JWTAUTH_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", *args], cwd=db.parent, env=env, capture_output=True,
        text=True, timeout=60, check=False, umask=umask,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "j.db"
    assert jwtauth(path, "db", "upgrade").returncode == 0
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620], ids=oct)
def test_serve_refuses_a_database_file_others_can_open(db: Path, mode: int) -> None:
    db.chmod(mode)
    result = jwtauth(db, "serve", "--port", str(free_port()))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"chmod 600 {db}" in result.stderr
    assert "listening" not in result.stderr


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_serve_refuses_a_wal_file_others_can_read(db: Path, suffix: str) -> None:
    companion = db.with_name(db.name + suffix)
    companion.touch(mode=0o644)
    companion.chmod(0o644)
    result = jwtauth(db, "user", "list")  # any entry point, not only serve
    assert result.returncode != 0
    assert f"chmod 600 {companion}" in result.stderr


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def test_the_library_refuses_it_too_and_sqlite_creates_private_wal_files(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "lib.db"
    database = create_database(f"sqlite:///{path}")
    try:
        await database.upgrade()
        async with database.begin() as conn:  # a write: SQLite makes -wal and -shm now
            await conn.execute(sa.text("INSERT INTO meta (name, value) VALUES ('x', 'y')"))
            companions = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)
            assert [mode_of(p) for p in (path, *companions)] == [0o600] * 3
    finally:
        await database.dispose()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        create_database(f"sqlite:///{path}")
