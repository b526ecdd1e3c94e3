"""The audit trail (issue 4.5): each security event is stored with time, user, client
address, user agent and session after the HTTP action that causes it, on SQLite and
PostgreSQL; GET /admin/audit pages and filters it; `jwtauth audit tail` prints it; the
structured log carries the same fields; and no token or password ever gets in."""

from __future__ import annotations

import base64
import json
import logging
import os
import select
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from conftest import PASSWORD, Api, AppFactory, Tokens

UA = {"User-Agent": "AuditTest/1.0 (the tests)"}
NEW_PASSWORD = "another-long-passphrase-42"


async def audit(api: Api, admin: Tokens, **params: Any) -> httpx.Response:
    return await api.client.get("/admin/audit", params=params, headers=admin.headers)


async def events(api: Api, admin: Tokens, event: str, **params: Any) -> list[dict[str, Any]]:
    response = await audit(api, admin, event=event, limit=500, **params)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def only(api: Api, admin: Tokens, event: str, **params: Any) -> dict[str, Any]:
    found = await events(api, admin, event, **params)
    assert len(found) == 1, found
    return found[0]


async def login(api: Api, username: str = "alice", password: str = PASSWORD) -> httpx.Response:
    return await api.client.post(
        "/auth/login", json={"username": username, "password": password}, headers=UA
    )


async def signup(api: Api, username: str = "alice") -> Tokens:
    await api.register(username)
    response = await login(api, username)
    assert response.status_code == 200, response.text
    body = response.json()
    return Tokens(body["access_token"], body["refresh_token"], body)


def claim(tokens: Tokens, name: str) -> str:
    # Read, not verified: the token may be revoked by now, and its ids are what we compare.
    payload = tokens.access_token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[name])


def sid(api: Api, tokens: Tokens) -> str:
    return claim(tokens, "sid")


def sub(api: Api, tokens: Tokens) -> str:
    return claim(tokens, "sub")


def assert_recorded_at(api: Api, event: dict[str, Any]) -> None:
    moment = datetime.fromisoformat(event["created_at"])
    assert moment.tzinfo is not None
    assert abs(moment.timestamp() - api.clock()) < 1  # the service's (injected) clock


# -- each event, after the HTTP action that causes it ------------------------------------


async def test_registration_is_recorded(api: Api) -> None:
    response = await api.client.post(
        "/auth/register", json={"username": "alice", "password": PASSWORD}, headers=UA
    )
    admin = await api.admin()
    event = await only(api, admin, "user_registered", user_id=response.json()["id"])
    assert event["username"] == "alice"
    assert event["client_ip"] == "127.0.0.1"
    assert event["user_agent"] == UA["User-Agent"]
    assert_recorded_at(api, event)


async def test_login_success_is_recorded_with_client_and_session(api: Api) -> None:
    alice = await signup(api)
    admin = await api.admin()
    event = await only(api, admin, "login_succeeded", user_id=sub(api, alice))
    assert event["username"] == "alice"
    assert event["session_id"] == sid(api, alice)
    assert event["client_ip"] == "127.0.0.1"
    assert event["user_agent"] == UA["User-Agent"]
    assert event["actor_id"] is None
    assert_recorded_at(api, event)


async def test_login_failure_records_the_attempted_username_never_the_password(
    api: Api,
) -> None:
    alice = await api.register("alice")
    wrong = "wrong-password-for-alice"
    assert (await login(api, "alice", wrong)).status_code == 401
    assert (await login(api, "ghost", wrong)).status_code == 401
    admin = await api.admin()
    failed = {e["username"]: e for e in await events(api, admin, "login_failed")}
    assert set(failed) == {"alice", "ghost"}
    assert failed["alice"]["user_id"] == alice["id"]
    assert failed["ghost"]["user_id"] is None
    for event in failed.values():
        assert event["client_ip"] == "127.0.0.1"
        assert event["session_id"] is None
        assert wrong not in json.dumps(event)


async def test_rate_limited_login_is_recorded(make_api: AppFactory) -> None:
    api = await make_api(login_max_failures=1)
    await api.register("alice")
    assert (await login(api, "alice", "wrong-password-1")).status_code == 401
    limited = await login(api, "alice", "wrong-password-2")
    assert limited.status_code == 429
    admin = await api.admin()
    event = await only(api, admin, "login_rate_limited")
    assert event["username"] == "alice"
    assert event["client_ip"] == "127.0.0.1"
    assert event["detail"] == {"retry_after": int(limited.headers["Retry-After"])}


async def test_refresh_token_reuse_is_recorded_with_the_revoked_family(api: Api) -> None:
    alice = await signup(api)
    rotated = await api.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert rotated.status_code == 200
    reused = await api.client.post(
        "/auth/refresh", json={"refresh_token": alice.refresh_token}, headers=UA
    )
    assert reused.status_code == 401
    admin = await api.admin()
    event = await only(api, admin, "refresh_token_reused")
    assert event["user_id"] == sub(api, alice)
    assert event["username"] == "alice"
    assert event["session_id"] == sid(api, alice)
    assert event["user_agent"] == UA["User-Agent"]
    assert event["detail"] == {"family_revoked": True}


async def test_refresh_by_cookie_reuse_is_recorded_too(api: Api) -> None:
    alice = await signup(api)
    assert (await api.client.post("/auth/refresh")).status_code == 200  # cookie rotated
    api.client.cookies.set("refresh_token", alice.refresh_token, domain="jwtauth.test")
    assert (await api.client.post("/auth/refresh")).status_code == 401
    admin = await api.admin()
    assert (await only(api, admin, "refresh_token_reused"))["session_id"] == sid(api, alice)


async def test_a_plain_rotation_is_not_reuse(api: Api) -> None:
    alice = await signup(api)
    assert (await api.client.post(
        "/auth/refresh", json={"refresh_token": alice.refresh_token}
    )).status_code == 200
    admin = await api.admin()
    assert await events(api, admin, "refresh_token_reused") == []


async def test_logout_is_recorded_with_the_session(api: Api) -> None:
    alice = await signup(api)
    response = await api.client.post("/auth/logout", headers={**alice.headers, **UA})
    assert response.status_code == 204
    admin = await api.admin()
    event = await only(api, admin, "logout")
    assert event["user_id"] == sub(api, alice)
    assert event["username"] == "alice"
    assert event["session_id"] == sid(api, alice)
    assert event["user_agent"] == UA["User-Agent"]


async def test_logout_with_the_cookie_alone_is_recorded_with_the_user(api: Api) -> None:
    alice = await signup(api)
    assert (await api.client.post("/auth/logout")).status_code == 204  # refresh cookie only
    admin = await api.admin()
    event = await only(api, admin, "logout")
    assert (event["user_id"], event["username"]) == (sub(api, alice), "alice")
    assert event["session_id"] == sid(api, alice)


async def test_logout_all_is_recorded(api: Api) -> None:
    alice = await signup(api)
    await login(api)
    response = await api.client.post("/auth/logout-all", headers=alice.headers)
    assert response.status_code == 204
    admin = await api.admin()
    event = await only(api, admin, "logout_all")
    assert event["user_id"] == sub(api, alice)
    assert event["session_id"] == sid(api, alice)


async def test_ending_a_session_is_recorded_with_that_session(api: Api) -> None:
    alice = await signup(api)
    other = await api.login("alice")
    response = await api.client.delete(f"/auth/sessions/{sid(api, other)}", headers=alice.headers)
    assert response.status_code == 204
    admin = await api.admin()
    event = await only(api, admin, "session_ended")
    assert event["user_id"] == sub(api, alice)
    assert event["session_id"] == sid(api, other)
    assert event["detail"] == {"by_session": sid(api, alice)}


async def test_password_change_is_recorded_without_either_password(api: Api) -> None:
    alice = await signup(api)
    response = await api.client.post(
        "/auth/password", headers=alice.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    admin = await api.admin()
    event = await only(api, admin, "password_changed")
    assert (event["user_id"], event["session_id"]) == (sub(api, alice), sid(api, alice))
    assert PASSWORD not in json.dumps(event) and NEW_PASSWORD not in json.dumps(event)


async def test_role_change_is_recorded_with_old_and_new_roles_and_the_admin(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    response = await api.client.patch(
        f"/admin/users/{alice['id']}", json={"roles": ["user", "editor"]},
        headers={**admin.headers, **UA},
    )
    assert response.status_code == 200
    event = await only(api, admin, "roles_changed")
    assert (event["user_id"], event["username"]) == (alice["id"], "alice")
    assert event["actor_id"] == sub(api, admin)
    assert event["detail"] == {"old_roles": ["user"], "new_roles": ["user", "editor"]}
    assert event["user_agent"] == UA["User-Agent"]


async def test_user_deletion_is_recorded_with_the_admin(api: Api) -> None:
    alice = await api.register("alice")
    admin = await api.admin()
    response = await api.client.delete(f"/admin/users/{alice['id']}", headers=admin.headers)
    assert response.status_code == 204
    event = await only(api, admin, "user_deleted")
    assert (event["user_id"], event["username"]) == (alice["id"], "alice")
    assert event["actor_id"] == sub(api, admin)


async def test_key_rotation_is_recorded_with_the_new_kid(api: Api) -> None:
    admin = await api.admin()
    response = await api.client.post("/admin/keys/rotate", headers=admin.headers)
    assert response.status_code == 200
    event = await only(api, admin, "key_rotated")
    assert event["detail"]["kid"] == response.json()["kid"]
    assert event["actor_id"] == sub(api, admin)


async def test_refused_actions_record_nothing(api: Api) -> None:
    alice = await signup(api)
    mallory = await signup(api, "mallory")
    # Mallory cannot end Alice's session: 404, and no event.
    response = await api.client.delete(f"/auth/sessions/{sid(api, alice)}", headers=mallory.headers)
    assert response.status_code == 404
    admin = await api.admin()
    assert await events(api, admin, "session_ended") == []


# -- the structured log line -------------------------------------------------------------


async def test_each_event_is_also_one_log_line_with_the_same_fields(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jwtauth.server.audit")
    alice = await signup(api)
    logged = [r for r in caplog.records if r.name == "jwtauth.server.audit"]
    assert [r.event for r in logged] == ["user_registered", "login_succeeded"]  # type: ignore[attr-defined]
    line = logged[-1]
    admin = await api.admin()
    stored = await only(api, admin, "login_succeeded", user_id=sub(api, alice))
    for field in ("user_id", "username", "client_ip", "user_agent", "session_id", "detail"):
        assert getattr(line, field) == stored[field], field
    assert line.audit_id == stored["id"]  # type: ignore[attr-defined]


async def test_reuse_is_logged_at_warning(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jwtauth.server.audit")
    alice = await signup(api)
    for _ in range(2):
        await api.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    reuse = [r for r in caplog.records if getattr(r, "event", None) == "refresh_token_reused"]
    assert [r.levelno for r in reuse] == [logging.WARNING]
    assert reuse[0].session_id == sid(api, alice)  # type: ignore[attr-defined]


async def test_a_broken_audit_table_does_not_fail_a_login(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # A real failure (the table is gone), not a mock: the login still succeeds, the
    # failed write is logged at ERROR, and the event still reaches the log.
    await api.register("alice")
    async with api.server.db.begin() as conn:
        await conn.execute(sa.text("DROP TABLE audit_events"))
    caplog.set_level(logging.INFO, logger="jwtauth.server.audit")
    response = await login(api)
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "jwtauth.server.audit"]
    assert any(r.levelno == logging.ERROR and "audit write failed" in r.getMessage()
               for r in records)
    assert any(getattr(r, "event", None) == "login_succeeded" for r in records)


# -- GET /admin/audit ----------------------------------------------------------------------


async def test_audit_pages_newest_first_with_an_id_cursor(api: Api) -> None:
    admin = await api.admin()
    for name in ("user1", "user2", "user3", "user4", "user5"):
        await api.register(name)
    everything = (await audit(api, admin)).json()
    assert everything["next_before"] is None
    ids = [e["id"] for e in everything["events"]]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 7
    seen: list[int] = []
    before: int | None = None
    while True:
        params = {"limit": 2} if before is None else {"limit": 2, "before": before}
        page = (await audit(api, admin, **params)).json()
        assert len(page["events"]) <= 2
        seen += [e["id"] for e in page["events"]]
        before = page["next_before"]
        if before is None:
            break
        assert before == page["events"][-1]["id"]
    assert seen == ids


async def test_audit_filters_by_user_and_by_event(api: Api) -> None:
    alice = await signup(api)
    await signup(api, "bob")
    admin = await api.admin()
    mine = (await audit(api, admin, user_id=sub(api, alice))).json()["events"]
    assert {e["event"] for e in mine} == {"user_registered", "login_succeeded"}
    assert {e["user_id"] for e in mine} == {sub(api, alice)}
    logins = (await audit(api, admin, event="login_succeeded")).json()["events"]
    assert sorted(e["username"] for e in logins) == ["alice", "bob", "root"]
    both = (await audit(api, admin, event="login_succeeded", user_id=sub(api, alice))).json()
    assert [e["username"] for e in both["events"]] == ["alice"]


async def test_audit_filters_by_time(api: Api) -> None:
    admin = await api.admin()
    await api.register("early")
    api.clock.advance(60)
    moment = datetime.fromtimestamp(api.clock() - 1, UTC).isoformat()
    await api.register("late")
    found = (await audit(api, admin, since=moment, event="user_registered")).json()["events"]
    assert [e["username"] for e in found] == ["late"]


async def test_audit_event_shape(api: Api) -> None:
    await signup(api)
    admin = await api.admin()
    for event in (await audit(api, admin)).json()["events"]:
        assert set(event) == {
            "id", "created_at", "event", "user_id", "username", "client_ip", "user_agent",
            "session_id", "actor_id", "detail",
        }
        assert isinstance(event["detail"], dict)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"before": 0}, {"before": 2**63}, {"event": "no_such_event"},
     {"since": "2020-01-01T00:00:00"}, {"since": "0001-01-01T00:00:00+14:00"},
     {"user_id": "x" * 37}, {"user_id": "a\x00b"}],
    ids=["limit-0", "limit-501", "before-0", "before-huge", "unknown-event", "naive-since",
         "since-out-of-range", "user-id-long", "user-id-nul"],
)
async def test_audit_with_bad_query_is_422(api: Api, params: dict[str, Any]) -> None:
    admin = await api.admin()
    response = await audit(api, admin, **params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_audit_without_token_is_401(api: Api) -> None:
    response = await api.client.get("/admin/audit")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_audit_for_a_plain_user_is_403(api: Api) -> None:
    alice = await signup(api)
    response = await api.client.get("/admin/audit", headers=alice.headers)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_role"


# -- nothing secret in the trail -----------------------------------------------------------


async def test_the_audit_trail_never_holds_a_token_or_a_password(api: Api) -> None:
    secrets = [PASSWORD, NEW_PASSWORD, "wrong-password-x"]
    alice = await signup(api)
    secrets += [alice.access_token, alice.refresh_token]
    rotated = (await api.client.post(
        "/auth/refresh", json={"refresh_token": alice.refresh_token}
    )).json()
    secrets += [rotated["access_token"], rotated["refresh_token"]]
    await api.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    await login(api, "alice", "wrong-password-x")
    again = await signup(api, "bob")
    await api.client.post(
        "/auth/password", headers=again.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    await api.client.post("/auth/logout", headers=again.headers)
    admin = await api.admin()
    secrets += [admin.access_token, admin.refresh_token]
    async with api.server.db.connect() as conn:
        secrets += list((await conn.execute(sa.text("SELECT password_hash FROM users"))).scalars())
    everything = (await audit(api, admin, limit=500)).json()["events"]
    assert len(everything) >= 10
    dumped = json.dumps(everything)
    for secret in secrets:
        assert secret not in dumped


# -- jwtauth audit tail ------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    env.update(
        JWTAUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
        JWTAUTH_ARGON2_MEMORY_COST="8192", JWTAUTH_ARGON2_TIME_COST="1",
    )

    def run(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "jwtauth", *args], cwd=tmp_path, env=env, input=stdin,
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    run.env = env  # type: ignore[attr-defined]
    run.cwd = tmp_path  # type: ignore[attr-defined]
    return run


def make_history(cli: Any) -> None:
    cli("user", "create", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    cli("user", "create", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    cli("user", "set-roles", "bob", "user", "editor")
    cli("user", "delete", "carol", "--yes")


def event_names(output: str) -> list[str]:
    return [line.split()[2] for line in output.splitlines() if line.strip()]


def test_audit_tail_prints_the_newest_events_oldest_first(cli: Any) -> None:
    make_history(cli)
    out = cli("audit", "tail", "-n", "3")
    assert event_names(out) == ["user_registered", "roles_changed", "user_deleted"]
    lines = out.splitlines()
    assert "bob" in lines[1] and '"new_roles": ["user", "editor"]' in lines[1]
    assert "carol" in lines[2]
    assert PASSWORD not in out


def test_audit_tail_filters_by_user_and_event(cli: Any) -> None:
    make_history(cli)
    assert event_names(cli("audit", "tail", "--user", "bob")) == [
        "user_registered", "roles_changed",
    ]
    assert event_names(cli("audit", "tail", "--event", "user_deleted")) == ["user_deleted"]
    assert cli("audit", "tail", "--user", "nobody") == ""


def test_audit_tail_json_lines(cli: Any) -> None:
    make_history(cli)
    rows = [json.loads(line) for line in cli("audit", "tail", "--json").splitlines()]
    assert [row["event"] for row in rows] == [
        "user_registered", "user_registered", "roles_changed", "user_deleted",
    ]
    assert rows[2]["username"] == "bob" and rows[2]["detail"]["old_roles"] == ["user"]


def test_audit_tail_follow_prints_new_events(cli: Any) -> None:
    cli("db", "upgrade")
    process = subprocess.Popen(
        [sys.executable, "-m", "jwtauth", "audit", "tail", "--follow", "--event",
         "user_registered"],
        cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        cli("user", "create", "dave", "--password-stdin", stdin=PASSWORD + "\n")
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no line within 30 s"
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "user_registered" in line and "dave" in line
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- retention (JWTAUTH_AUDIT_RETENTION) --------------------------------------------------


async def test_events_older_than_the_retention_are_deleted(make_api: AppFactory) -> None:
    api = await make_api(audit_retention="1h")
    await api.register("old")
    api.clock.advance(3600 + 1)
    admin = await api.admin()  # after the jump: its token must still be good
    await api.register("new")
    newest_id = (await audit(api, admin)).json()["events"][0]["id"]
    assert await api.server.background.prune_audit() >= 1
    kept = (await audit(api, admin, limit=500)).json()["events"]
    registered = {e["username"] for e in kept if e["event"] == "user_registered"}
    assert "old" not in registered and "new" in registered
    assert all(datetime.fromisoformat(e["created_at"]).timestamp() >= api.clock() - 3601
               for e in kept)
    await api.register("later")  # ids are never reused, so cursors held by readers stay valid
    assert (await audit(api, admin)).json()["events"][0]["id"] > newest_id


async def test_pruning_goes_in_batches_until_nothing_old_is_left(make_api: AppFactory) -> None:
    api = await make_api(audit_retention=0)
    for name in ("user1", "user2", "user3", "user4", "user5"):
        await api.register(name)
    api.clock.advance(10)
    assert await api.server.background.prune_audit() == 0  # 0 keeps everything
    cutoff = datetime.fromtimestamp(api.clock() - 5, UTC)
    assert await api.server.audit_store.prune(cutoff, batch=2) == 5
    assert await api.server.audit_store.page(limit=100) == []
