"""Passkeys (issue 11, point 4), core and storage: creation options with resident key
and user verification required, registration verified by py_webauthn, sign-in without
a user name (discoverable) and with one, user verification required, sign counters
checked (a regression refused and audited), challenges single use at any instance,
disabled users refused, credentials listed and removed. The authenticator is a real
software one (webauthn_kit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from jwtauth.errors import InvalidCredentials, InvalidInput, NotFound
from jwtauth.server.mfa.passkeys import PasskeyLogin, PasskeyService, RelyingParty
from jwtauth.server.store import Database
from jwtauth.server.store.account_tables import webauthn_credentials
from jwtauth.server.store.tables import users

from accounts_kit import Now, add_user, audit_rows, auditor_for, open_db
from conftest import Backend
from webauthn_kit import SoftAuthenticator

ORIGIN = "https://auth.example.test"
RP = RelyingParty.for_origin(ORIGIN, "Example")


@dataclass
class World:
    db: Database
    now: Now
    passkeys: PasskeyService


def world_on(db: Database, now: Now) -> World:
    return World(db, now, PasskeyService(db, auditor_for(db, now), now=now, challenge_ttl=300))


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    async with open_db(backend) as db:
        yield world_on(db, Now())


async def registered(world: World, user_id: str, username: str = "alice",
                     device: SoftAuthenticator | None = None) -> SoftAuthenticator:
    device = device or SoftAuthenticator()
    options = await world.passkeys.registration_options(RP, user_id, username)
    await world.passkeys.register(RP, user_id, device.create(options, ORIGIN))
    return device


async def sign_in(world: World, device: SoftAuthenticator, *, username: str | None = None,
                  **kwargs: object) -> PasskeyLogin:
    options = await world.passkeys.login_options(RP, username=username)
    credential = device.get(options["publicKey"], ORIGIN, **kwargs)  # type: ignore[arg-type]
    return await world.passkeys.authenticate(RP, options["challenge_id"], credential)


async def refusals(world: World) -> list[str]:
    return [e["detail"]["reason"] for e in await audit_rows(world.db)
            if e["event"] == "passkey_login_failed"]


def test_rp_id_is_the_host_of_the_origin() -> None:
    assert RelyingParty.for_origin("http://localhost:8000/", "x") == RelyingParty(
        "localhost", "http://localhost:8000", "x")
    assert RP.id == "auth.example.test"


async def test_creation_options_require_resident_key_and_uv(world: World) -> None:
    user_id = await add_user(world.db)
    options = await world.passkeys.registration_options(RP, user_id, "alice")
    assert options["rp"] == {"id": "auth.example.test", "name": "Example"}
    assert options["user"]["name"] == "alice"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["requireResidentKey"] is True
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert len(options["challenge"]) >= 43 and "=" not in options["challenge"]
    device = await registered(world, user_id)
    again = await world.passkeys.registration_options(RP, user_id, "alice")
    assert [c["id"] for c in again["excludeCredentials"]] == [device.id]


async def test_register_then_sign_in_without_a_username(world: World) -> None:
    user_id = await add_user(world.db)
    device = await registered(world, user_id)
    [stored] = await world.passkeys.list_for(user_id)
    assert stored.id == device.id and stored.transports == ["internal"]
    assert stored.sign_count == 0 and stored.last_used_at is None
    options = await world.passkeys.login_options(RP)
    assert options["publicKey"]["allowCredentials"] == []
    assert options["publicKey"]["userVerification"] == "required"
    assert options["publicKey"]["rpId"] == RP.id
    credential = device.get(options["publicKey"], ORIGIN)
    login = await world.passkeys.authenticate(RP, options["challenge_id"], credential)
    assert (login.user_id, login.credential_id) == (user_id, device.id)
    assert (login.amr, login.acr) == (["hwk", "user", "mfa"], "aal2")
    [after] = await world.passkeys.list_for(user_id)
    assert after.sign_count == 1 and after.last_used_at is not None
    [event] = [e for e in await audit_rows(world.db) if e["event"] == "login_succeeded"]
    assert event["user_id"] == user_id and event["detail"]["method"] == "passkey"


async def test_sign_in_with_a_username_lists_its_credentials(world: World) -> None:
    alice, bob = await add_user(world.db), await add_user(world.db, "bob")
    alices = await registered(world, alice)
    bobs = await registered(world, bob, "bob")
    options = await world.passkeys.login_options(RP, username="ALICE")
    assert [c["id"] for c in options["publicKey"]["allowCredentials"]] == [alices.id]
    # Bob's passkey against a challenge made for alice: refused.
    with pytest.raises(InvalidCredentials):
        await world.passkeys.authenticate(RP, options["challenge_id"],
                                          bobs.get(options["publicKey"], ORIGIN))
    assert (await sign_in(world, alices, username="alice")).user_id == alice
    unknown = await world.passkeys.login_options(RP, username="nobody")
    assert unknown["publicKey"]["allowCredentials"] == []
    assert await refusals(world) == ["other_user"]


async def test_user_verification_is_required(world: World) -> None:
    user_id = await add_user(world.db)
    device = SoftAuthenticator()
    options = await world.passkeys.registration_options(RP, user_id, "alice")
    with pytest.raises(InvalidInput):
        await world.passkeys.register(RP, user_id, device.create(options, ORIGIN, uv=False))
    device = await registered(world, user_id)
    with pytest.raises(InvalidCredentials):
        await sign_in(world, device, uv=False)
    assert await refusals(world) == ["user_not_verified"]


async def test_a_sign_counter_that_goes_back_is_refused_and_audited(world: World) -> None:
    user_id = await add_user(world.db)
    device = await registered(world, user_id)
    await sign_in(world, device, sign_count=5)
    for stale in (5, 3):
        with pytest.raises(InvalidCredentials):
            await sign_in(world, device, sign_count=stale)
    await sign_in(world, device, sign_count=6)
    events = await audit_rows(world.db)
    regressed = [e for e in events if e["event"] == "passkey_counter_regressed"]
    assert [(e["detail"]["stored"], e["detail"]["presented"]) for e in regressed] == [
        (5, 5), (5, 3)]
    # An authenticator without a counter (always 0) is fine (WebAuthn 6.1.1).
    counterless = await registered(world, user_id, device=SoftAuthenticator(counter=False))
    for _ in range(2):
        assert (await sign_in(world, counterless)).user_id == user_id


async def test_a_challenge_is_used_once_even_at_once_and_at_another_instance(
    backend: Backend,
) -> None:
    now = Now()
    async with open_db(backend) as a, open_db(backend) as b:
        one, two = world_on(a, now), world_on(b, now)
        user_id = await add_user(a)
        device = await registered(one, user_id)
        options = await one.passkeys.login_options(RP)
        # Six signed answers to one challenge, sent to both instances at once.
        answers = [device.get(options["publicKey"], ORIGIN) for _ in range(6)]
        results = await asyncio.gather(
            *((one if i % 2 else two).passkeys.authenticate(RP, options["challenge_id"], c)
              for i, c in enumerate(answers)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, PasskeyLogin) for r in results) == 1, results
        assert all(isinstance(r, PasskeyLogin | InvalidCredentials) for r in results)
        # Options from one instance, the answer at the other.
        other = await one.passkeys.login_options(RP)
        login = await two.passkeys.authenticate(RP, other["challenge_id"],
                                                device.get(other["publicKey"], ORIGIN))
        assert login.user_id == user_id


async def test_registration_challenge_single_use(world: World) -> None:
    user_id = await add_user(world.db)
    options = await world.passkeys.registration_options(RP, user_id, "alice")
    first, second = SoftAuthenticator(), SoftAuthenticator()
    await world.passkeys.register(RP, user_id, first.create(options, ORIGIN))
    with pytest.raises(InvalidInput):
        await world.passkeys.register(RP, user_id, second.create(options, ORIGIN))
    # Another user cannot complete alice's ceremony either.
    bob = await add_user(world.db, "bob")
    fresh = await world.passkeys.registration_options(RP, user_id, "alice")
    with pytest.raises(InvalidInput):
        await world.passkeys.register(RP, bob, second.create(fresh, ORIGIN))


async def test_wrong_origin_expired_challenge_and_garbage_are_refused(world: World) -> None:
    user_id = await add_user(world.db)
    device = await registered(world, user_id)
    options = await world.passkeys.login_options(RP)
    with pytest.raises(InvalidCredentials):
        await world.passkeys.authenticate(
            RP, options["challenge_id"], device.get(options["publicKey"], "https://evil.test"))
    late = await world.passkeys.login_options(RP)
    world.now.advance(300)
    with pytest.raises(InvalidCredentials):
        await world.passkeys.authenticate(RP, late["challenge_id"],
                                          device.get(late["publicKey"], ORIGIN))
    for garbage in ({}, {"id": 5}, {"id": "x" * 2000}, {"id": device.id, "response": {}}):
        fresh = await world.passkeys.login_options(RP)
        with pytest.raises(InvalidCredentials):
            await world.passkeys.authenticate(RP, fresh["challenge_id"], garbage)
    assert await refusals(world) == ["assertion", "challenge", "credential", "credential",
                                     "credential", "assertion"]


async def test_a_disabled_user_cannot_sign_in_with_a_passkey(world: World) -> None:
    user_id = await add_user(world.db)
    device = await registered(world, user_id)
    async with world.db.begin() as conn:
        await conn.execute(users.update().where(users.c.id == user_id)
                           .values(disabled_at=world.now()))
    with pytest.raises(InvalidCredentials):
        await sign_in(world, device)
    assert await refusals(world) == ["disabled"]


async def test_passkeys_listed_and_removed(world: World) -> None:
    user_id, bob = await add_user(world.db), await add_user(world.db, "bob")
    first = await registered(world, user_id)
    second = await registered(world, user_id)
    listed = [p.public() for p in await world.passkeys.list_for(user_id)]
    assert sorted(p["id"] for p in listed) == sorted([first.id, second.id])
    assert all("public_key" not in p for p in listed)
    with pytest.raises(NotFound):
        await world.passkeys.remove(bob, first.id)  # not bob's
    await world.passkeys.remove(user_id, first.id)
    with pytest.raises(InvalidCredentials):
        await sign_in(world, first)
    assert (await sign_in(world, second)).user_id == user_id
    async with world.db.connect() as conn:
        count = await conn.execute(sa.select(sa.func.count()).select_from(webauthn_credentials))
        assert count.scalar_one() == 1
