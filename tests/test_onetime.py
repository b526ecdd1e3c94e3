"""One-time tokens (issue 11): email verification and password reset tokens are 256-bit,
stored only as SHA-256, mailed in the transaction that stores them, single use under
concurrency at several instances, bound to their purpose and address, expire (24 h /
30 min), and each account gets at most a few mails an hour."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from jwtauth.errors import Conflict, InvalidGrant, RateLimited
from jwtauth.server.mail.outbox import DeliveryPolicy, Outbox, deliver_due
from jwtauth.server.mail.smtp import SmtpMailer, SmtpTarget
from jwtauth.server.onetime import OneTimeTokens, hash_token
from jwtauth.server.sealing import Sealer, SealPurpose
from jwtauth.server.store import Database
from jwtauth.server.store.account_tables import one_time_tokens
from jwtauth.server.store.outbox import OutboxStore
from jwtauth.server.store.tables import users

from accounts_kit import (
    KEK,
    Now,
    add_user,
    at_once,
    audit_names,
    auditor_for,
    open_db,
    queued_tokens,
)
from conftest import Backend
from smtp_kit import SmtpServer, token_from_mail

ORIGIN = "https://auth.example.test"


@dataclass
class World:
    db: Database
    now: Now
    tokens: OneTimeTokens


def tokens_on(db: Database, now: Now) -> OneTimeTokens:
    outbox = Outbox(OutboxStore(db), Sealer(KEK, SealPurpose.MAIL_TOKEN))
    return OneTimeTokens(db, outbox, auditor_for(db, now), now=now)


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    now = Now()
    async with open_db(backend) as db:
        yield World(db, now, tokens_on(db, now))


async def verified(db: Database, user_id: str) -> bool:
    async with db.connect() as conn:
        query = sa.select(users.c.email_verified).where(users.c.id == user_id)
        return bool((await conn.execute(query)).scalar_one())


async def test_verification_by_mail_end_to_end(world: World) -> None:
    user_id = await add_user(world.db, email="Alice@Example.TEST")
    await world.tokens.request_verification(user_id, origin=ORIGIN)
    with SmtpServer("plain") as smtp:
        policy = DeliveryPolicy(sender="no-reply@example.test", site="Example")
        outbox = Outbox(OutboxStore(world.db), Sealer(KEK, SealPurpose.MAIL_TOKEN))
        mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
        await deliver_due(outbox, mailer, policy, auditor_for(world.db, world.now),
                          now=world.now)
        [message] = smtp.inbox.messages
    assert message["To"] == "Alice@Example.TEST"
    assert "/verify-email?token=" in str(message.get_body(("plain",)))
    token = token_from_mail(message)
    assert not await verified(world.db, user_id)
    assert await world.tokens.verify_email(token) == user_id
    assert await verified(world.db, user_id)
    with pytest.raises(InvalidGrant):
        await world.tokens.verify_email(token)  # single use
    assert await audit_names(world.db) == ["email_verify_requested", "mail_sent",
                                           "email_verified"]


async def test_only_hashes_are_stored(world: World) -> None:
    user_id = await add_user(world.db, email="a@example.test")
    await world.tokens.request_verification(user_id, origin=ORIGIN)
    [token] = await queued_tokens(world.db)
    assert len(token) >= 43  # 256 bits in base64url
    async with world.db.connect() as conn:
        row = (await conn.execute(one_time_tokens.select())).one()
    assert token not in str(dict(row._mapping))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)


async def test_verification_needs_an_address_and_is_limited(world: World) -> None:
    nobody = await add_user(world.db, "bob")
    with pytest.raises(Conflict):
        await world.tokens.request_verification(nobody, origin=ORIGIN)
    user_id = await add_user(world.db, email="a@example.test")
    for _ in range(5):
        await world.tokens.request_verification(user_id, origin=ORIGIN)
    with pytest.raises(RateLimited) as caught:
        await world.tokens.request_verification(user_id, origin=ORIGIN)
    assert 3590 <= caught.value.retry_after <= 3600
    world.now.advance(3601)
    await world.tokens.request_verification(user_id, origin=ORIGIN)


async def test_a_token_verifies_only_the_address_it_was_mailed_to(world: World) -> None:
    user_id = await add_user(world.db, email="old@example.test")
    await world.tokens.request_verification(user_id, origin=ORIGIN)
    [token] = await queued_tokens(world.db)
    async with world.db.begin() as conn:
        await conn.execute(users.update().where(users.c.id == user_id)
                           .values(email="new@example.test", email_folded="new@example.test"))
    with pytest.raises(InvalidGrant):
        await world.tokens.verify_email(token)
    assert not await verified(world.db, user_id)


async def test_verification_expires_after_24_hours(world: World) -> None:
    user_id = await add_user(world.db, email="a@example.test")
    await world.tokens.request_verification(user_id, origin=ORIGIN)
    [token] = await queued_tokens(world.db)
    world.now.advance(24 * 3600)
    with pytest.raises(InvalidGrant):
        await world.tokens.verify_email(token)


async def test_reset_only_to_a_verified_address_and_a_few_an_hour(world: World) -> None:
    unverified = await add_user(world.db, "bob", email="bob@example.test")
    assert not await world.tokens.request_reset(unverified, origin=ORIGIN)
    user_id = await add_user(world.db, email="alice@example.test", verified=True)
    # Ten requests at once: exactly the hourly three get a mail, the rest are dropped.
    results = await at_once(10, lambda: world.tokens.request_reset(user_id, origin=ORIGIN))
    assert sorted(results, key=bool) == [False] * 7 + [True] * 3
    assert len(await queued_tokens(world.db)) == 3
    names = await audit_names(world.db)
    assert names.count("password_reset_requested") == 3
    assert names.count("password_reset_throttled") == 7
    world.now.advance(3601)
    assert await world.tokens.request_reset(user_id, origin=ORIGIN)


async def test_forgot_finds_accounts_by_folded_email_or_name(world: World) -> None:
    alice = await add_user(world.db, email="Alice@Example.test", verified=True)
    assert await world.tokens.accounts_for_forgot(email=" alice@EXAMPLE.test ") == [alice]
    assert await world.tokens.accounts_for_forgot(username="ALICE") == [alice]
    assert await world.tokens.accounts_for_forgot(email="nobody@example.test") == []
    assert await world.tokens.accounts_for_forgot(email="not an address") == []


async def redeem(world: World, token: str) -> str:
    async with world.db.begin() as conn:
        return await world.tokens.redeem_reset(conn, token, world.now())


async def test_reset_token_single_use_at_two_instances_at_once(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as a, open_db(backend) as b:
        one, two = tokens_on(a, now), tokens_on(b, now)
        user_id = await add_user(a, email="a@example.test", verified=True)
        await one.request_reset(user_id, origin=ORIGIN)
        [token] = await queued_tokens(a)
        worlds = [World(a, now, one), World(b, now, two)] * 4
        results = await asyncio.gather(*(redeem(w, token) for w in worlds),
                                       return_exceptions=True)
        wins = [r for r in results if r == user_id]
        assert len(wins) == 1, results
        assert all(isinstance(r, InvalidGrant) for r in results if r != user_id)


async def test_reset_spends_the_other_reset_tokens_and_expires(world: World) -> None:
    user_id = await add_user(world.db, email="a@example.test", verified=True)
    for _ in range(2):
        await world.tokens.request_reset(user_id, origin=ORIGIN)
    first, second = await queued_tokens(world.db)
    assert await redeem(world, second) == user_id
    with pytest.raises(InvalidGrant):
        await redeem(world, first)
    await world.tokens.request_reset(user_id, origin=ORIGIN)
    third = (await queued_tokens(world.db))[-1]
    world.now.advance(30 * 60)
    with pytest.raises(InvalidGrant):
        await redeem(world, third)


async def test_purposes_do_not_cross(world: World) -> None:
    user_id = await add_user(world.db, email="a@example.test", verified=True)
    await world.tokens.request_verification(user_id, origin=ORIGIN)
    [verify_token] = await queued_tokens(world.db)
    with pytest.raises(InvalidGrant):
        await redeem(world, verify_token)
    await world.tokens.request_reset(user_id, origin=ORIGIN)
    reset_token = (await queued_tokens(world.db))[-1]
    with pytest.raises(InvalidGrant):
        await world.tokens.verify_email(reset_token)
    for bad in ("", "x" * 500):
        with pytest.raises(InvalidGrant):
            await world.tokens.verify_email(bad)
