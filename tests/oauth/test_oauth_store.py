"""The OAuth tables and their queries on SQLite and PostgreSQL: one-winner rules fired
at once (code claims, outbox claims across instances), consent unions, the outbox's
enqueue inside a revocation transaction, cascades, and migration 0005 both ways."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from oauth_world import World, register_web, world

from jwtauth.server.oauth.clients import validate_metadata
from jwtauth.server.oauth.ports import ClaimOutcome, CodeRecord, GrantLink, StoredClient
from jwtauth.server.store.oauth import families_ending_with
from jwtauth.server.store.oauth_outbox import LogoutOutbox, enqueue

__all__ = ["world"]


def code_record(world: World, client_id: str, user_id: str, code_hash: str) -> CodeRecord:
    now = world.provider.now()
    return CodeRecord(
        code_hash=code_hash, client_id=client_id, user_id=user_id,
        redirect_uri="https://rp.example.test/callback", scope=("openid",),
        code_challenge="c" * 43, nonce=None, resource=None, signin_sid="s", auth_time=now,
        amr=("pwd",), acr="aal1", expires_at=now + timedelta(seconds=60),
    )


async def family(world: World, user_id: str, client_id: str, *, parent: str | None,
                 offline: bool = False) -> str:
    made = await world.families.create(user_id=user_id, client_id=client_id, refresh=True,
                                       now=world.provider.now())
    now = world.provider.now()
    await world.grants.link(GrantLink(
        session_id=made.session_id, client_id=client_id, user_id=user_id, scope=("openid",),
        resource=None, parent_sid=parent, offline=offline, nonce=None, auth_time=now,
        amr=("pwd",), acr="aal1", created_at=now,
    ))
    return made.session_id


async def test_clients_round_trip(world: World) -> None:
    client_id, _ = await register_web(world, backchannel_logout_uri="https://rp.example.test/bc")
    stored = await world.clients.get(client_id)
    assert stored is not None and stored.secret_hash is not None
    assert stored.metadata.backchannel_logout_uri == "https://rp.example.test/bc"
    changed = await world.provider.registry.update(client_id, {"client_name": "Renamed"})
    assert changed.client_name == "Renamed"
    assert (await world.clients.get(client_id)).metadata.client_name == "Renamed"  # type: ignore[union-attr]
    assert [c.metadata.client_id for c in await world.clients.page(limit=10, offset=0)] == [
        client_id]
    assert await world.clients.delete(client_id)
    assert await world.clients.get(client_id) is None
    assert not await world.clients.delete(client_id)


async def test_concurrent_code_claims_have_exactly_one_winner(world: World) -> None:
    client_id, _ = await register_web(world)
    user_id = await world.user()
    await world.codes.add(code_record(world, client_id, user_id, "h" * 64),
                          now=world.provider.now())
    claims = await asyncio.gather(
        *(world.codes.claim("h" * 64, now=world.provider.now()) for _ in range(10))
    )
    outcomes = [c.outcome for c in claims]
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.REPLAYED) == 9
    # The winner learns that replays came: it must revoke what it made.
    assert await world.codes.bind_family("h" * 64, "fam-1") is True
    again = await world.codes.claim("h" * 64, now=world.provider.now())
    assert again.outcome is ClaimOutcome.REPLAYED and again.family_id == "fam-1"
    assert (await world.codes.claim("z" * 64, now=world.provider.now())).outcome is (
        ClaimOutcome.UNKNOWN)


async def test_a_code_without_replay_binds_quietly_and_expired_codes_go(world: World) -> None:
    client_id, _ = await register_web(world)
    user_id = await world.user()
    await world.codes.add(code_record(world, client_id, user_id, "a" * 64),
                          now=world.provider.now())
    assert (await world.codes.claim("a" * 64, now=world.provider.now())).outcome is (
        ClaimOutcome.CLAIMED)
    assert await world.codes.bind_family("a" * 64, "fam") is False
    assert await world.codes.purge(world.provider.now() + timedelta(hours=1)) == 1


async def test_consent_is_the_union_even_when_granted_at_once(world: World) -> None:
    client_id, _ = await register_web(world)
    user_id = await world.user()
    grants = [frozenset({"openid"}), frozenset({"email"}), frozenset({"profile"}),
              frozenset({"openid", "offline_access"})]
    await asyncio.gather(*(
        world.consents.grant(user_id, client_id, scope, now=world.provider.now())
        for scope in grants
    ))
    assert await world.consents.granted(user_id, client_id) == frozenset(
        {"openid", "email", "profile", "offline_access"})
    assert await world.consents.revoke(user_id, client_id)
    assert await world.consents.granted(user_id, client_id) == frozenset()


async def test_families_ending_with_a_sign_in_session(world: World) -> None:
    client_id, _ = await register_web(world)
    user_id = await world.user()
    online = await family(world, user_id, client_id, parent="signin-1")
    offline = await family(world, user_id, client_id, parent="signin-1", offline=True)
    await family(world, user_id, client_id, parent="signin-2")
    async with world.db.begin() as conn:
        assert await families_ending_with(conn, ["signin-1"]) == [online]
    assert offline


async def test_outbox_one_row_per_family_and_one_sender_per_row(world: World) -> None:
    with_bc, _ = await register_web(world, backchannel_logout_uri="https://rp.example.test/bc")
    without_bc, _ = await register_web(world, client_name="No back-channel")
    user_id = await world.user()
    first = await family(world, user_id, with_bc, parent="signin-1")
    await family(world, user_id, with_bc, parent="signin-1", offline=True)
    await family(world, user_id, without_bc, parent="signin-1")
    now = world.provider.now()
    async with world.db.begin() as conn:  # as the revocation unit of work will
        assert await enqueue(conn, ["signin-1"], now) == 2
    # Logout and logout-all ending the same session add nothing more.
    outbox = LogoutOutbox(world.db, lease=60)
    assert await outbox.enqueue(["signin-1", first], now) == 0
    # Four instances claim at once: each row goes to exactly one of them.
    claimed = await asyncio.gather(*(outbox.claim_due(f"i{n}", now) for n in range(4)))
    ids = [job.id for jobs in claimed for job in jobs]
    assert len(ids) == len(set(ids)) == 2
    assert await outbox.claim_due("late", now) == []
    # A crashed instance's lease runs out; the row is claimed again, by one.
    later = now + timedelta(seconds=61)
    again = await asyncio.gather(*(outbox.claim_due(f"j{n}", later) for n in range(3)))
    assert sorted(job.id for jobs in again for job in jobs) == sorted(ids)
    owner = next(f"j{n}" for n, jobs in enumerate(again) if jobs)
    job = next(job for jobs in again for job in jobs)
    assert not await outbox.delivered(job, "i0", now=later, status=200)  # not the holder
    assert await outbox.delivered(job, owner, now=later, status=200)
    counts = await outbox.counts()
    assert counts == {"delivered": 1, "pending": 1}


async def test_deleting_a_client_cascades_its_rows(world: World) -> None:
    from jwtauth.server.store.oauth_tables import (
        oauth_codes,
        oauth_consents,
        oauth_grants,
        oauth_logout_outbox,
    )

    client_id, _ = await register_web(world, backchannel_logout_uri="https://rp.example.test/bc")
    user_id = await world.user()
    await world.codes.add(code_record(world, client_id, user_id, "c" * 64),
                          now=world.provider.now())
    await world.consents.grant(user_id, client_id, frozenset({"openid"}),
                               now=world.provider.now())
    fam = await family(world, user_id, client_id, parent="signin-1")
    await LogoutOutbox(world.db).enqueue([fam], world.provider.now())
    assert await world.clients.delete(client_id)
    async with world.db.connect() as conn:
        for table in (oauth_codes, oauth_consents, oauth_grants, oauth_logout_outbox):
            count = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
            assert count == 0, table.name


async def test_migration_0005_downgrades_and_upgrades(world: World) -> None:
    from alembic import command
    from alembic.config import Config

    from jwtauth.server.store.database import MIGRATIONS

    def run(connection: sa.Connection, target: str, up: bool) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        (command.upgrade if up else command.downgrade)(config, target)

    async with world.db.engine.begin() as conn:
        await conn.run_sync(run, "0004", False)
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert not [n for n in names if n.startswith("oauth_")]
        await conn.run_sync(run, "head", True)
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert {"oauth_clients", "oauth_codes", "oauth_consents", "oauth_grants",
                "oauth_logout_outbox"} <= set(names)


async def test_stored_metadata_survives_stricter_settings(world: World) -> None:
    """A client registered while loopback URIs were allowed still loads afterwards."""
    metadata = validate_metadata(
        {"redirect_uris": ["http://127.0.0.1:9000/cb"], "token_endpoint_auth_method": "none"},
        client_id="loopback-web-client-0001", trusted=True, allow_loopback=True,
        id_token_algs=("RS256",),
    )
    now = world.provider.now()
    await world.clients.add(StoredClient(metadata, None, now), now=now)
    assert (await world.clients.get("loopback-web-client-0001")).metadata == metadata  # type: ignore[union-attr]
