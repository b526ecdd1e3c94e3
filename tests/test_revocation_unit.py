"""The one revocation unit of work (sessions/revocation.py): for every path that ends a
session or a user's tokens, the state change, the revocation log row and the audit row
commit together or not at all, and memory follows only a commit.

Failures are real: a trigger (SQLite) or a CHECK constraint (PostgreSQL) makes the
database refuse the audit row, or the log row, of the one path under test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from conftest import BASE_URL, PASSWORD, Api, Tokens

NEW_PASSWORD = "staple-quantum-lantern-42"


@dataclass
class Scene:
    """Alice on two devices; ``admin`` to delete her. Tokens as of the login."""

    api: Api
    client: httpx.AsyncClient  # answers a crash with its 500, as a server would
    alice: Tokens
    other: Tokens
    admin: Tokens
    alice_id: str


async def scene(api: Api, client: httpx.AsyncClient) -> Scene:
    admin = await api.admin()
    alice = await api.signup("alice")
    other = await api.login("alice")
    me = await api.client.get("/users/me", headers=alice.headers)
    rotated = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert rotated.status_code == 200, rotated.text
    return Scene(api, client, alice, other, admin, me.json()["id"])


def sid(api: Api, tokens: Tokens) -> str:
    return str(api.server.verifier.verify_sync(tokens.access_token).sid)


# Each path: the audit event it writes, the log entry it must write with it (kind and
# whose value), and the request that takes it.
Act = Callable[[Scene], Awaitable[httpx.Response]]


async def logout(s: Scene) -> httpx.Response:
    return await s.client.post("/auth/logout", headers=s.alice.headers)


async def logout_all(s: Scene) -> httpx.Response:
    return await s.client.post("/auth/logout-all", headers=s.alice.headers)


async def end_session(s: Scene) -> httpx.Response:
    other = sid(s.api, s.other)
    return await s.client.delete(f"/auth/sessions/{other}", headers=s.alice.headers)


async def change_password(s: Scene) -> httpx.Response:
    return await s.client.post(
        "/auth/password", headers=s.alice.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )


async def delete_user(s: Scene) -> httpx.Response:
    return await s.client.delete(f"/admin/users/{s.alice_id}", headers=s.admin.headers)


async def reuse(s: Scene) -> httpx.Response:
    # Alice's first refresh token was rotated away by ``scene``.
    return await s.client.post("/auth/refresh", json={"refresh_token": s.alice.refresh_token})


# (act, audit event, log kind, the session whose access token it kills or None for the
# user, HTTP status on success)
PATHS = {
    "logout": (logout, "logout", "sid", "alice", 204),
    "logout-all": (logout_all, "logout_all", "sid", "alice", 204),
    "session-delete": (end_session, "session_ended", "sid", "other", 204),
    "password-change": (change_password, "password_changed", "sid", "other", 204),
    "user-delete": (delete_user, "user_deleted", "sub", None, 204),
    "refresh-reuse": (reuse, "refresh_token_reused", "sid", "alice", 401),
}


async def inject(api: Api, table: str, condition_sql: str, condition_pg: str) -> None:
    """Make the database refuse rows of ``table`` matching the condition."""
    async with api.server.db.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(sa.text(
                f"CREATE TRIGGER injected BEFORE INSERT ON {table} WHEN {condition_sql} "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            ))
        else:  # NOT VALID: rows already there are not checked, new ones are
            await conn.execute(sa.text(
                f"ALTER TABLE {table} ADD CONSTRAINT injected CHECK ({condition_pg}) NOT VALID"
            ))


async def lift(api: Api, table: str) -> None:
    async with api.server.db.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(sa.text("DROP TRIGGER injected"))
        else:
            await conn.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT injected"))


async def records(api: Api, event: str, kind: str, value: str) -> tuple[int, int]:
    """(audit rows of ``event``, log rows of ``kind`` for ``value``)."""
    async with api.server.db.connect() as conn:
        audited = (await conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE event = :e"), {"e": event}
        )).scalar_one()
        logged = (await conn.execute(
            sa.text("SELECT count(*) FROM revocations WHERE kind = :k AND value = :v"),
            {"k": kind, "v": value},
        )).scalar_one()
    return int(audited), int(logged)


async def accepted(api: Api, tokens: Tokens) -> bool:
    response = await api.client.get("/users/me", headers=tokens.headers)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


@pytest.mark.parametrize("refused", ["audit row", "log row"])
@pytest.mark.parametrize("path", list(PATHS))
async def test_state_log_and_audit_commit_together_or_not_at_all(
    api: Api, path: str, refused: str
) -> None:
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        await check_path(await scene(api, client), path, refused)


async def check_path(s: Scene, path: str, refused: str) -> None:
    act, event, kind, whose, status = PATHS[path]
    api = s.api
    killed = {"alice": s.alice, "other": s.other}.get(whose or "", s.alice)
    value = s.alice_id if whose is None else sid(api, killed)
    if refused == "audit row":
        table = "audit_events"
        await inject(api, table, f"NEW.event = '{event}'", f"event <> '{event}'")
    else:
        table = "revocations"
        await inject(api, table, f"NEW.kind = '{kind}'", f"kind <> '{kind}'")

    failed = await act(s)
    assert failed.status_code == 500, failed.text
    assert await records(api, event, kind, value) == (0, 0)
    # Nothing changed, in the database or in memory: the tokens work, the password too.
    assert await accepted(api, killed)
    assert await accepted(api, s.alice)
    login = await api.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200, login.text

    await lift(api, table)
    done = await act(s)
    assert done.status_code == status, done.text
    audited, logged = await records(api, event, kind, value)
    assert audited == 1 and logged >= 1
    assert not await accepted(api, killed)
