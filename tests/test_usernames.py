"""One account per name without regard to case (issue 13, point 6; API.md "Accounts people
expect"): registration in another case is 409, concurrent ones included; sign-in accepts
any case and answers with the stored spelling; migration 0004 adds a unique index on the
folded name and, where existing names collide, stops with exit status 2, naming them and
changing nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jwt
import sqlalchemy as sa

from jwtauth.server.store import create_database
from jwtauth.server.usernames import fold

from conftest import PASSWORD, Api, Backend


async def test_registering_a_name_in_another_case_is_409(api: Api) -> None:
    await api.register("alice")
    for spelling in ("Alice", "ALICE", "aLiCe"):
        response = await api.client.post(
            "/auth/register", json={"username": spelling, "password": PASSWORD}
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "conflict"


async def test_concurrent_registrations_in_several_cases_make_one_account(api: Api) -> None:
    spellings = ["bob", "Bob", "BOB", "bOb", "boB", "BoB"]
    responses = await asyncio.gather(*(
        api.client.post("/auth/register", json={"username": name, "password": PASSWORD})
        for name in spellings
    ))
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 5}
    users = await api.service.list_users(limit=10, offset=0)
    assert [fold(u.username) for u in users] == ["bob"]


async def test_sign_in_accepts_any_case_and_answers_with_the_stored_spelling(api: Api) -> None:
    await api.register("Alice")
    for spelling in ("alice", "ALICE", "Alice"):
        tokens = await api.login(spelling)
        claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
        assert claims["preferred_username"] == "Alice"
        me = await api.client.get("/users/me", headers=tokens.headers)
        assert me.json()["username"] == "Alice"


async def test_a_non_ascii_look_alike_matches_no_account(api: Api) -> None:
    # U+212A KELVIN SIGN lowers to "k" in Python and in PostgreSQL's Unicode lower():
    # the fold is ASCII-only, so it must not open the account "kate".
    await api.register("kate")
    response = await api.client.post(
        "/auth/login", json={"username": "\u212aate", "password": PASSWORD}
    )
    assert response.status_code == 401


# -- migration 0004 on a database with colliding names -----------------------------------


def cli_env(backend: Backend) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env["JWTAUTH_DATABASE_URL"] = backend.overrides["database_url"]
    if "database_schema" in backend.overrides:
        env["JWTAUTH_DATABASE_SCHEMA"] = backend.overrides["database_schema"]
    return env


def db_upgrade(backend: Backend, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jwtauth", "db", "upgrade"], env=cli_env(backend), cwd=cwd,
        capture_output=True, text=True, timeout=60, check=False,
    )


async def test_upgrade_names_existing_collisions_exits_2_and_changes_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    db = create_database(
        backend.overrides["database_url"], schema=backend.overrides.get("database_schema")
    )
    try:
        await db.upgrade("0003")
        async with db.begin() as conn:
            for index, name in enumerate(["alice", "Alice", "ALICE", "bob", "BOB", "carol"]):
                await conn.execute(
                    sa.text(
                        "INSERT INTO users (id, username, email, password_hash, roles, "
                        "created_at, updated_at) VALUES (:id, :name, NULL, 'x', '[\"user\"]', "
                        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    ),
                    {"id": f"00000000-0000-0000-0000-00000000000{index}", "name": name},
                )
        blocked = db_upgrade(backend, tmp_path)
        assert blocked.returncode == 2, blocked.stderr
        assert "ALICE, Alice, alice; BOB, bob" in blocked.stderr
        assert "carol" not in blocked.stderr
        assert "Traceback" not in blocked.stderr
        async with db.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version")))
            assert version.scalar_one() == "0003"
            assert (await conn.execute(sa.text("SELECT count(*) FROM users"))).scalar_one() == 6
        async with db.begin() as conn:
            await conn.execute(sa.text("DELETE FROM users WHERE username IN ('Alice', 'ALICE')"))
            await conn.execute(sa.text("UPDATE users SET username = 'bob2' WHERE username = 'BOB'"))
        done = db_upgrade(backend, tmp_path)
        assert done.returncode == 0, done.stderr
        async with db.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version")))
            assert version.scalar_one() >= "0004"  # past 0004: at head, whatever follows
        with_index = []
        try:
            async with db.begin() as conn:
                await conn.execute(sa.text(
                    "INSERT INTO users (id, username, email, password_hash, roles, created_at, "
                    "updated_at) VALUES ('x1', 'CAROL', NULL, 'x', '[]', '2026-01-01 00:00:00', "
                    "'2026-01-01 00:00:00')"
                ))
        except sa.exc.IntegrityError:
            with_index.append("refused")
        assert with_index == ["refused"]
    finally:
        await db.dispose()
