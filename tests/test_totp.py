"""TOTP (issue 11, point 3): enrolment pending until confirmed, a 160-bit secret sealed at
rest, codes from pyotp and from Node's otplib accepted within one step of drift and only
once (also at two instances at once), the QR code as script-free SVG, ten recovery
codes stored hashed and each single use, and the mfa_token of the login's second step:
single use, 5 minutes, not consumed by a wrong code."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import sqlalchemy as sa

from jwtauth.errors import Conflict, Forbidden, InvalidCredentials, InvalidInput
from jwtauth.server.mfa import recovery
from jwtauth.server.mfa.challenge import MfaChallenges, MfaResult
from jwtauth.server.mfa.totp import otpauth_uri, qr_data_uri, qr_svg
from jwtauth.server.mfa.totp_service import TotpService
from jwtauth.server.sealing import Sealer, SealPurpose
from jwtauth.server.store import Database
from jwtauth.server.store.account_tables import recovery_codes, totp_credentials

from accounts_kit import KEK, Now, add_user, audit_names, audit_rows, auditor_for, open_db
from conftest import Backend, unavailable

INTEROP = Path(__file__).resolve().parent.parent / "interop"


@dataclass
class World:
    db: Database
    now: Now
    totp: TotpService
    mfa: MfaChallenges


def world_on(db: Database, now: Now) -> World:
    auditor = auditor_for(db, now)
    service = TotpService(db, Sealer(KEK, SealPurpose.TOTP_SECRET), auditor, now=now,
                          issuer="Example")
    return World(db, now, service, MfaChallenges(db, service, auditor, now=now, ttl=300,
                                                 max_attempts=4))


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    async with open_db(backend) as db:
        yield world_on(db, Now())


def code_at(secret: str, world: World, offset: float = 0) -> str:
    """pyotp's code for the world's clock moved by ``offset`` seconds."""
    return str(pyotp.TOTP(secret).at(world.now().timestamp() + offset))


async def enrolled(world: World, user_id: str) -> tuple[str, list[str]]:
    enrolment = await world.totp.begin(user_id, account="alice")
    codes = await world.totp.confirm(user_id, code_at(enrolment.secret, world))
    world.now.advance(30)  # the confirming code is used; the next step is free
    return enrolment.secret, codes


async def second_step(world: World, user_id: str, **factor: str) -> MfaResult:
    token = await world.mfa.issue(user_id, ["pwd"])
    return await world.mfa.complete(token, **factor)


async def test_enrolment_is_pending_until_a_right_code(world: World) -> None:
    user_id = await add_user(world.db)
    enrolment = await world.totp.begin(user_id, account="alice")
    assert len(base64.b32decode(enrolment.secret)) * 8 >= 160
    assert enrolment.secret not in repr(enrolment)
    parts = urlsplit(enrolment.otpauth_uri)
    assert (parts.scheme, parts.netloc, unquote(parts.path)) == ("otpauth", "totp",
                                                                "/Example:alice")
    assert parse_qs(parts.query)["secret"] == [enrolment.secret]
    assert not await world.totp.is_on(user_id)
    with pytest.raises(InvalidInput):
        await world.totp.confirm(user_id, "000000" if code_at(enrolment.secret, world)
                                 != "000000" else "111111")
    # Restarting replaces the pending secret: the old one's codes no longer confirm.
    again = await world.totp.begin(user_id, account="alice")
    with pytest.raises(InvalidInput):
        await world.totp.confirm(user_id, code_at(enrolment.secret, world))
    codes = await world.totp.confirm(user_id, code_at(again.secret, world))
    assert await world.totp.is_on(user_id)
    assert len(codes) == len(set(codes)) == 10
    with pytest.raises(Conflict):
        await world.totp.begin(user_id, account="alice")
    async with world.db.connect() as conn:
        stored = str([dict(r._mapping) for r in await conn.execute(totp_credentials.select())])
        hashes = str([dict(r._mapping) for r in await conn.execute(recovery_codes.select())])
    assert again.secret not in stored and "aesgcm:v1:" in stored  # sealed
    assert not any(recovery.normalize(c) in hashes.upper() for c in codes)
    assert await audit_names(world.db) == ["totp_enrolment_started", "totp_enrolment_started",
                                           "totp_enabled"]


async def test_the_confirming_code_counts_as_used(world: World) -> None:
    user_id = await add_user(world.db)
    enrolment = await world.totp.begin(user_id, account="alice")
    code = code_at(enrolment.secret, world)
    await world.totp.confirm(user_id, code)
    with pytest.raises(InvalidCredentials):
        await second_step(world, user_id, code=code)
    assert "totp_replay_refused" in await audit_names(world.db)


async def test_one_step_of_drift_and_never_twice(world: World) -> None:
    user_id = await add_user(world.db)
    secret, _ = await enrolled(world, user_id)
    world.now.advance(300)
    for offset in (-60, 60):  # two steps away: refused
        with pytest.raises(InvalidCredentials):
            await second_step(world, user_id, code=code_at(secret, world, offset))
    for offset in (-30, 0, 30):  # one step behind, now, one ahead: each once, in order
        result = await second_step(world, user_id, code=code_at(secret, world, offset))
        assert (result.user_id, result.amr, result.acr) == (user_id, ["pwd", "otp", "mfa"],
                                                            "aal2")
        with pytest.raises(InvalidCredentials):
            await second_step(world, user_id, code=code_at(secret, world, offset))
    # A code of an earlier step than one already used is refused too (RFC 6238 5.2).
    world.now.advance(30)
    with pytest.raises(InvalidCredentials):
        await second_step(world, user_id, code=code_at(secret, world, -30))


async def test_one_code_at_two_instances_at_once_is_accepted_once(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as a, open_db(backend) as b:
        one, two = world_on(a, now), world_on(b, now)
        user_id = await add_user(a)
        secret, _ = await enrolled(one, user_id)
        code = code_at(secret, one)
        tokens = [await (one if i % 2 else two).mfa.issue(user_id, ["pwd"]) for i in range(8)]
        results = await asyncio.gather(
            *((one if i % 2 else two).mfa.complete(t, code=code) for i, t in enumerate(tokens)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, MfaResult) for r in results) == 1, results
        assert all(isinstance(r, MfaResult | InvalidCredentials) for r in results)


async def test_mfa_token_single_use_not_consumed_by_a_wrong_code(world: World) -> None:
    user_id = await add_user(world.db)
    secret, _ = await enrolled(world, user_id)
    token = await world.mfa.issue(user_id, ["pwd"])
    assert await world.mfa.user_of(token) == user_id
    right = code_at(secret, world)
    wrong = "123456" if right != "123456" else "654321"
    with pytest.raises(InvalidCredentials):
        await world.mfa.complete(token, code=wrong)
    # Eight at once with the right code: one wins, and the token is spent.
    results = await asyncio.gather(*(world.mfa.complete(token, code=right) for _ in range(8)),
                                   return_exceptions=True)
    assert sum(isinstance(r, MfaResult) for r in results) == 1, results
    world.now.advance(30)
    with pytest.raises(InvalidCredentials):
        await world.mfa.complete(token, code=code_at(secret, world))
    assert await world.mfa.user_of(token) is None
    for bad in ("", "x" * 500, "not-a-token"):
        with pytest.raises(InvalidCredentials):
            await world.mfa.complete(bad, code=right)


async def test_mfa_token_expires_and_wears_out(world: World) -> None:
    user_id = await add_user(world.db)
    secret, _ = await enrolled(world, user_id)
    token = await world.mfa.issue(user_id, ["pwd"])
    world.now.advance(300)
    with pytest.raises(InvalidCredentials):
        await world.mfa.complete(token, code=code_at(secret, world))
    worn = await world.mfa.issue(user_id, ["pwd"])
    right = code_at(secret, world)
    for _ in range(4):  # max_attempts wrong codes
        with pytest.raises(InvalidCredentials):
            await world.mfa.complete(worn, code="000000" if right != "000000" else "999999")
    with pytest.raises(InvalidCredentials):
        await world.mfa.complete(worn, code=right)
    failures = [e for e in await audit_rows(world.db) if e["event"] == "mfa_failed"]
    assert [e["detail"]["reason"] for e in failures] == ["mfa_token"] + ["code"] * 4 + [
        "mfa_token"]
    assert [e["user_id"] for e in failures] == [None] + [user_id] * 4 + [None]


async def test_recovery_codes_each_once_even_at_once(world: World) -> None:
    user_id = await add_user(world.db)
    _, codes = await enrolled(world, user_id)
    result = await second_step(world, user_id, recovery_code=codes[0].upper().replace("-", " "))
    assert result.amr == ["pwd", "otp", "mfa"] and result.acr == "aal2"
    with pytest.raises(InvalidCredentials):
        await second_step(world, user_id, recovery_code=codes[0])
    tokens = [await world.mfa.issue(user_id, ["pwd"]) for _ in range(6)]
    results = await asyncio.gather(
        *(world.mfa.complete(t, recovery_code=codes[1]) for t in tokens), return_exceptions=True
    )
    assert sum(isinstance(r, MfaResult) for r in results) == 1, results
    assert await world.totp.recovery_codes_left(user_id) == 8
    assert "recovery_code_used" in await audit_names(world.db)
    with pytest.raises(InvalidCredentials):
        await second_step(world, user_id, recovery_code="not-a-code")
    with pytest.raises(InvalidCredentials):  # neither or both factors
        await world.mfa.complete(tokens[0])


async def test_disable_needs_a_right_code(world: World) -> None:
    user_id = await add_user(world.db)
    secret, codes = await enrolled(world, user_id)
    with pytest.raises(Forbidden):
        await world.totp.disable(user_id, code="000000" if code_at(secret, world) != "000000"
                                 else "111111")
    await world.totp.disable(user_id, recovery_code=codes[3])
    assert not await world.totp.is_on(user_id)
    async with world.db.connect() as conn:
        left = await conn.execute(sa.select(sa.func.count()).select_from(recovery_codes))
        assert left.scalar_one() == 0
    await world.totp.begin(user_id, account="alice")  # may enrol again


def test_qr_code_is_svg_without_script_or_style() -> None:
    uri = otpauth_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account="alice", issuer="Example")
    svg = qr_svg(uri)
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag.endswith("svg")
    for element in root.iter():
        assert not element.tag.endswith(("script", "style", "foreignObject"))
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
    assert "javascript:" not in svg.lower()
    assert qr_data_uri(uri).startswith("data:image/svg+xml")


# -- Node's otplib ------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        unavailable("Node.js", "no `node` on PATH; install Node 20+")
    assert path is not None
    if not (INTEROP / "node_modules" / "otplib").is_dir():
        unavailable("interop/node_modules/otplib", "not installed; run `cd interop && npm ci`")
    return path


def otplib(node: str, request: dict[str, object]) -> dict[str, object]:
    # The secret goes on stdin, never argv.
    done = subprocess.run([node, str(INTEROP / "totp.mjs")], input=json.dumps(request),
                          cwd=INTEROP, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


async def test_codes_from_nodes_otplib_are_accepted(world: World, node: str) -> None:
    user_id = await add_user(world.db)
    enrolment = await world.totp.begin(user_id, account="alice")
    moment = world.now().timestamp()
    answer = otplib(node, {"secret": enrolment.secret, "uri": enrolment.otpauth_uri,
                           "epochs": [moment, moment + 30, moment + 60, moment + 120]})
    confirm, next_step, two_ahead, far = answer["codes"]  # type: ignore[misc]
    parsed = answer["parsed"]
    assert isinstance(parsed, dict)
    assert parsed["params"]["secret"] == enrolment.secret
    assert parsed["params"]["issuer"] == "Example"
    await world.totp.confirm(user_id, confirm)
    world.now.advance(60)  # otplib's "moment + 30" is now one step behind
    assert (await second_step(world, user_id, code=next_step)).acr == "aal2"
    assert (await second_step(world, user_id, code=two_ahead)).acr == "aal2"
    with pytest.raises(InvalidCredentials):  # two steps ahead of the clock
        await second_step(world, user_id, code=far)
