"""Issue 3.1 and API.md "POST /admin/keys/rotate": keys go next -> current -> retiring ->
retired; a new key is published before it signs when given a lead time; an old key keeps
verifying until the last token it signed has expired, then leaves the JWKS."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest

from conftest import Api, AppFactory, Backend, Clock, Tokens


def kid_of(tokens: Tokens) -> str:
    return str(jwt.get_unverified_header(tokens.access_token)["kid"])


async def published(api: Api) -> list[str]:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


async def states(api: Api) -> dict[str, str]:
    return {r.kid: r.state for r in await api.server.key_store.records()}


async def me(api: Api, tokens: Tokens) -> int:
    return (await api.client.get("/users/me", headers=tokens.headers)).status_code


async def test_admin_rotation_signs_with_the_new_key_and_old_tokens_still_verify(
    api: Api,
) -> None:
    admin = await api.admin()
    user = await api.signup("alice")
    old_kid = kid_of(user)
    response = await api.client.post("/admin/keys/rotate", headers=admin.headers)
    assert response.status_code == 200
    new_kid = response.json()["kid"]
    assert new_kid != old_kid
    assert await me(api, user) == 200  # signed with the old key, still verifies
    fresh = await api.login("alice")
    assert kid_of(fresh) == new_kid
    assert set(await published(api)) == {old_kid, new_kid}
    assert (await states(api))[old_kid] == "retiring"


async def test_retiring_key_leaves_the_jwks_once_its_tokens_have_expired(api: Api) -> None:
    user = await api.signup("alice")
    old_kid = kid_of(user)
    await api.server.keys.rotate_keys()
    ttl = api.service.settings.access_ttl + api.service.settings.clock_skew
    api.clock.advance(ttl - 5)
    assert not await api.server.keys.maintain_keys()
    assert old_kid in await published(api)
    assert await me(api, user) == 200  # within exp + skew: still good
    api.clock.advance(10)
    assert await api.server.keys.maintain_keys()
    await api.server.keys.reload_keys()
    assert old_kid not in await published(api)
    assert (await states(api))[old_kid] == "retired"


async def test_a_key_with_a_lead_time_is_published_before_it_signs(api: Api) -> None:
    user = await api.signup("alice")
    current = kid_of(user)
    standby = await api.server.keys.rotate_keys(lead=600)
    assert (await states(api))[standby] == "next"
    assert standby in await published(api)  # caches can hold it before the first token
    assert kid_of(await api.login("alice")) == current
    api.clock.advance(601)
    assert await api.server.keys.maintain_keys()
    await api.server.keys.reload_keys()
    assert kid_of(await api.login("alice")) == standby
    assert (await states(api))[current] == "retiring"
    assert await me(api, user) == 200


async def test_automatic_rotation_publishes_the_next_key_ahead_of_time(
    make_api: AppFactory,
) -> None:
    clock = Clock()
    api = await make_api(clock=clock, key_rotation=3600, key_rotation_lead=600)
    first = kid_of(await api.signup("alice"))
    clock.advance(2000)
    assert not await api.server.keys.maintain_keys()  # not due yet
    clock.advance(1100)  # 3100 s: within the lead time of the 3600 s period
    assert await api.server.keys.maintain_keys()
    await api.server.keys.reload_keys()
    kids = await states(api)
    assert kids[first] == "current"
    [standby] = [kid for kid, state in kids.items() if state == "next"]
    assert standby in await published(api)
    clock.advance(601)
    assert await api.server.keys.maintain_keys()
    await api.server.keys.reload_keys()
    assert kid_of(await api.login("alice")) == standby


async def test_instances_finding_a_rotation_due_at_once_rotate_once(
    make_api: AppFactory,
) -> None:
    # Each instance runs the maintenance loop; the due check and the insert share the
    # keys lock, so racing instances add one standby key, not one each.
    clock = Clock()
    settings = {"key_rotation": 3600, "key_rotation_lead": 600}
    instances = [await make_api(clock=clock, **settings) for _ in range(3)]
    clock.advance(3100)
    results = await asyncio.gather(*(i.server.keys.maintain_keys() for i in instances))
    assert results.count(True) == 1
    assert list((await states(instances[0])).values()).count("next") == 1
    rotations = await instances[0].server.audit_store.page(limit=50)
    assert [e.event.value for e in rotations].count("key_rotated") == 1


async def test_another_process_signs_and_verifies_with_a_rotated_key(
    make_api: AppFactory,
) -> None:
    a = await make_api(revocation_poll_interval=0.05)
    b = await make_api(revocation_poll_interval=0.05)
    await a.register("alice")
    new_kid = await a.server.keys.rotate_keys()
    fresh = await a.login("alice")
    assert kid_of(fresh) == new_kid
    for _ in range(100):  # B reloads its keys when it reads the rotation from the log
        if new_kid in b.service.keyring.kids():
            break
        await asyncio.sleep(0.02)
    assert await me(b, fresh) == 200
    assert kid_of(await b.login("alice")) == new_kid


async def test_hs256_keys_are_not_rotated_here(make_api: AppFactory) -> None:
    api = await make_api(algorithm="HS256", secret="s3cr3t-" + "x1y2z3" * 8)
    admin = await api.admin()
    response = await api.client.post("/admin/keys/rotate", headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


# -- the operator's commands ------------------------------------------------------------


def run_cli(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jwtauth", *args], cwd=cwd, env=env, input=stdin,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def cli_env(sqlite_backend: Backend, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "JWTAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"}


def test_keys_commands_rotate_list_export_and_import(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    run_cli(tmp_path, cli_env, "db", "upgrade")
    first = run_cli(tmp_path, cli_env, "keys", "rotate").strip()
    second = run_cli(tmp_path, cli_env, "keys", "rotate").strip()
    listing = run_cli(tmp_path, cli_env, "keys", "list")
    rows = {line.split()[0]: line.split()[2] for line in listing.splitlines()}
    assert rows[first] == "retiring" and rows[second] == "current"
    assert "sealed" in listing  # SQLite: sealed with the key file beside the database
    exported: dict[str, Any] = json.loads(run_cli(tmp_path, cli_env, "keys", "export-public"))
    assert {k["kid"] for k in exported["keys"]} >= {first, second}
    assert all("d" not in k for k in exported["keys"])

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "op.pem").write_bytes(pem)
    imported = run_cli(tmp_path, cli_env, "keys", "import", "op.pem").strip()
    rows = {line.split()[0]: line.split()[2] for line in
            run_cli(tmp_path, cli_env, "keys", "list").splitlines()}
    assert rows[imported] == "current"
    again = subprocess.run(
        [sys.executable, "-m", "jwtauth", "keys", "import", "op.pem"], cwd=tmp_path,
        env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert again.returncode != 0 and "already known" in again.stderr
    assert "PRIVATE KEY" not in again.stderr + again.stdout
