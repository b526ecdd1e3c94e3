"""Revocation and key events through Redis (events.py; issue 3, points 4 and 5): a
``RevocationFeed`` lets another service's ``Verifier`` refuse logged-out tokens, catches
up after a break, and refuses every token while it cannot vouch for its list; servers
refill Redis from the database; key changes reach every process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis

from jwtauth import InvalidToken, Verifier
from jwtauth.events import Event, RevocationFeed, StreamKeys, connect
from jwtauth.revocation import RevocationKind, RevocationList
from jwtauth.server.eventbus import add_events

from conftest import REDIS_URL, Api, AppFactory, Tokens
from redis_kit import RedisUser, lose_data

ISSUER = "https://jwtauth.test"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 1.0) -> float:
    """Seconds until ``check`` holds; fails if it does not within ``within``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def refusal(verifier: Verifier, tokens: Tokens) -> str | None:
    """Why ``verifier`` refuses the access token (InvalidToken's reason), or None."""
    try:
        await verifier.verify(tokens.access_token)
    except InvalidToken as exc:
        return exc.reason
    return None


def verifier_for(api: Api, feed: RevocationFeed) -> Verifier:
    """What another service builds: the server's public keys and the feed."""
    return Verifier.from_jwks(api.service.keyring.jwks, issuer=ISSUER, audience="jwtauth",
                              revocations=feed.revocations)


FeedFactory = Callable[..., RevocationFeed]


@pytest.fixture
async def make_feed(redis_prefix: str) -> AsyncIterator[FeedFactory]:
    feeds: list[RevocationFeed] = []

    def build(url: str = REDIS_URL, **options: Any) -> RevocationFeed:
        feed = RevocationFeed.from_redis(url, prefix=redis_prefix, **options)
        feeds.append(feed)
        return feed

    yield build
    for feed in feeds:
        await feed.aclose()


@pytest.fixture
def redis_user(redis_prefix: str) -> Any:
    user = RedisUser(redis_prefix)
    yield user
    user.drop()


def mark_complete(prefix: str) -> None:
    """What a server does after copying the database log into Redis: the marker on the
    stream. Also the separate marker key servers used to set (``events:complete``), as
    one left behind would be: nothing may trust it."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = StreamKeys.for_prefix(prefix)
    try:
        client.xgroup_create(keys.stream, keys.group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        assert "BUSYGROUP" in str(exc)
    client.set(prefix + "events:complete", "1")
    client.close()


def has_marker(client: redis.Redis, keys: StreamKeys) -> bool:
    try:
        groups = client.xinfo_groups(keys.stream)
    except redis.ResponseError:
        return False
    return any(group["name"] == keys.group.encode() for group in groups)


def lose_stream(prefix: str) -> None:
    """A stray DEL, an eviction: the stream goes, every other key stays."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.delete(StreamKeys.for_prefix(prefix).stream) == 1
    finally:
        client.close()


# -- a feed for another service ----------------------------------------------------------


async def test_a_feed_refuses_a_token_logged_out_at_the_server_at_once(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    alice, bob = await server.signup("alice"), await server.signup("bob")
    feed = make_feed()
    assert await feed.start()
    verifier = verifier_for(server, feed)
    assert await refusal(verifier, alice) is None
    logout = await server.client.post("/auth/logout", headers=alice.headers)
    assert logout.status_code == 204
    await eventually(lambda: _is_refused(verifier, alice, "revoked"))
    assert await refusal(verifier, bob) is None


async def _is_refused(verifier: Verifier, tokens: Tokens, reason: str | None) -> bool:
    return await refusal(verifier, tokens) == reason


async def test_a_feed_started_later_reads_earlier_revocations_from_the_stream(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    alice = await server.signup("alice")
    assert (await server.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    await asyncio.sleep(0.05)  # the publisher's queue drains in the background
    feed = make_feed()
    assert await feed.start()
    assert await refusal(verifier_for(server, feed), alice) == "revoked"


async def test_a_server_copies_the_database_revocations_into_an_empty_redis(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    before = await make_api()  # no Redis: the logout is only in the database log
    alice = await before.signup("alice")
    assert (await before.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    await make_api(clock=before.clock, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    feed = make_feed()
    assert await feed.start()
    assert await refusal(verifier_for(before, feed), alice) == "revoked"


async def test_a_feed_refuses_every_token_until_a_server_has_filled_redis(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    plain = await make_api()
    alice = await plain.signup("alice")
    feed = make_feed()
    assert not await feed.start(wait=0.3)
    verifier = verifier_for(plain, feed)
    assert await refusal(verifier, alice) == "revocations unavailable"
    await make_api(clock=plain.clock, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    await eventually(lambda: _is_refused(verifier, alice, None), within=3)


async def test_a_feed_cut_off_from_redis_fails_closed_and_catches_up_when_back(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory, redis_user: RedisUser
) -> None:
    server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    alice, bob = await server.signup("alice"), await server.signup("bob")
    feed = make_feed(redis_user.url, max_staleness=3)
    assert await feed.start()
    verifier = verifier_for(server, feed)
    assert await refusal(verifier, alice) is None
    assert redis_user.cut() >= 1
    await eventually(lambda: _is_refused(verifier, bob, "revocations unavailable"), within=5)
    # Logged out while the feed cannot hear it: the stream keeps the event.
    assert (await server.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    await asyncio.sleep(0.1)
    redis_user.restore()
    await eventually(lambda: _is_refused(verifier, alice, "revoked"), within=1)
    await eventually(lambda: _is_refused(verifier, bob, None), within=1)


async def test_a_feed_needs_only_read_access_to_redis(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    # The ACL the README gives for another service's feed.
    reader = RedisUser(redis_prefix, ("%R~{prefix}*", "+@read", "+ping", "+client|setname",
                                      "+select"))
    try:
        server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
        alice = await server.signup("alice")
        assert (await server.client.post("/auth/logout", headers=alice.headers)).status_code == 204
        await asyncio.sleep(0.05)
        feed = make_feed(reader.url)
        assert await feed.start()
        assert await refusal(verifier_for(server, feed), alice) == "revoked"
    finally:
        reader.drop()


async def test_a_feed_refuses_every_token_once_redis_lost_its_data(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    plain = await make_api()  # signs tokens; no server follows this prefix
    alice = await plain.signup("alice")
    mark_complete(redis_prefix)
    feed = make_feed(max_staleness=3)
    assert await feed.start()
    verifier = verifier_for(plain, feed)
    assert await refusal(verifier, alice) is None
    lose_data(redis_prefix)  # a restart without persistence: no server refills it here
    await eventually(lambda: _is_refused(verifier, alice, "revocations unavailable"), within=5)


async def test_a_server_refills_redis_after_it_lost_its_data(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    alice = await server.signup("alice")
    assert (await server.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    await asyncio.sleep(0.05)
    lose_data(redis_prefix)
    keys = StreamKeys.for_prefix(redis_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await eventually(lambda: _has_marker(client, keys), within=3)
    finally:
        client.close()
    feed = make_feed()
    assert await feed.start()
    assert await refusal(verifier_for(server, feed), alice) == "revoked"


async def _has_marker(client: redis.Redis, keys: StreamKeys) -> bool:
    return has_marker(client, keys)


async def test_a_feed_ignores_malformed_entries(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    plain = await make_api()
    alice = await plain.signup("alice")
    sid = (await plain.client.get("/users/me", headers=alice.headers)).json()["session_id"]
    mark_complete(redis_prefix)
    feed = make_feed()
    assert await feed.start()
    stream = StreamKeys.for_prefix(redis_prefix).stream
    client = redis.Redis.from_url(REDIS_URL)
    try:
        until = f"{time.time() + 600:.3f}"
        for garbage in ({"k": "sid"}, {"k": "admin", "v": sid, "u": until},
                        {"k": "sid", "v": sid, "u": "nan"}, {"k": "sid", "v": sid, "u": "soon"},
                        {"k": "sid", "v": "", "u": until}, {"x": "y"}):
            client.xadd(stream, garbage)  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        verifier = verifier_for(plain, feed)
        assert await refusal(verifier, alice) is None
        client.xadd(stream, {"k": "sid", "v": sid, "u": until})
        await eventually(lambda: _is_refused(verifier, alice, "revoked"))
    finally:
        client.close()


async def test_entries_older_than_any_token_they_concern_are_trimmed(redis_prefix: str) -> None:
    keys = StreamKeys.for_prefix(redis_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    async_client = connect(REDIS_URL, name="jwtauth-test")
    try:
        two_hours_ago = int((time.time() - 7200) * 1000)
        client.xadd(keys.stream, {"k": "sid", "v": "old", "u": "0"}, id=f"{two_hours_ago}-0")
        await add_events(async_client, keys, [Event("sid", "new", time.time() + 960)],
                         retention=960)
        assert [fields[b"v"] for _id, fields in client.xrange(keys.stream)] == [b"new"]
    finally:
        client.close()
        await async_client.aclose()


# -- the stream lost, its marker with it (issue 13, point 8) -------------------------------


async def never_accepted_until_revoked(verifier: Verifier, tokens: Tokens, within: float
                                       ) -> list[str | None]:
    """Poll until the token is refused as revoked; every answer on the way."""
    seen: list[str | None] = []
    started = time.monotonic()
    while not seen or seen[-1] != "revoked":
        assert time.monotonic() - started < within, seen[-5:]
        seen.append(await refusal(verifier, tokens))
        assert seen[-1] is not None, "a logged-out token was accepted"
        await asyncio.sleep(0.01)
    return seen


async def test_a_feed_refuses_every_token_once_the_stream_alone_is_lost(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    plain = await make_api()  # signs tokens; no server follows this prefix to refill it
    alice, bob = await plain.signup("alice"), await plain.signup("bob")
    sid = (await plain.client.get("/users/me", headers=alice.headers)).json()["session_id"]
    client = connect(REDIS_URL, name="jwtauth-test")
    try:
        await add_events(client, StreamKeys.for_prefix(redis_prefix),
                         [Event("sid", sid, time.time() + 600)], retention=960)
    finally:
        await client.aclose()
    mark_complete(redis_prefix)
    feed = make_feed(max_staleness=3)
    assert await feed.start()
    verifier = verifier_for(plain, feed)
    assert await refusal(verifier, alice) == "revoked"
    assert await refusal(verifier, bob) is None
    lose_stream(redis_prefix)  # the old separate marker key survives it
    later = make_feed(max_staleness=3)
    assert not await later.start(wait=1.5)
    assert await refusal(verifier_for(plain, later), alice) == "revocations unavailable"
    await eventually(lambda: _is_refused(verifier, bob, "revocations unavailable"), within=5)


async def test_a_server_refills_a_lost_stream_and_a_fresh_feed_never_trusts_it_meanwhile(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    server = await make_api(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    alice = await server.signup("alice")
    assert (await server.client.post("/auth/logout", headers=alice.headers)).status_code == 204
    first = make_feed(max_staleness=3)
    assert await first.start()
    await eventually(lambda: _is_refused(verifier_for(server, first), alice, "revoked"))
    lose_stream(redis_prefix)
    fresh = make_feed(max_staleness=3)
    start = asyncio.create_task(fresh.start(wait=5))
    seen = await never_accepted_until_revoked(verifier_for(server, fresh), alice, within=5)
    assert await start
    assert seen[-1] == "revoked"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = StreamKeys.for_prefix(redis_prefix)
        assert has_marker(client, keys)
        assert any(f[b"v"].decode() != "" for _id, f in client.xrange(keys.stream))
    finally:
        client.close()
    assert await refusal(verifier_for(server, first), alice) == "revoked"


async def test_a_feed_rereads_a_refilled_stream_whose_ids_went_back(
    redis_prefix: str, make_api: AppFactory, make_feed: FeedFactory
) -> None:
    # A failover to a Redis whose clock is behind: the refilled stream's ids may sit
    # below the last id a feed read. The marker's new filling makes it start over.
    plain = await make_api()
    alice = await plain.signup("alice")
    sid = (await plain.client.get("/users/me", headers=alice.headers)).json()["session_id"]
    mark_complete(redis_prefix)
    feed = make_feed(max_staleness=3)
    assert await feed.start()
    keys = StreamKeys.for_prefix(redis_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.xadd(keys.stream, {"k": "keys", "v": "k1", "u": f"{time.time() + 60:.3f}"})
        await eventually(lambda: _read_past(feed, "0-0"))
        lose_stream(redis_prefix)
        until = f"{time.time() + 600:.3f}"
        client.xadd(keys.stream, {"k": "sid", "v": sid, "u": until}, id="1-1")
        client.xgroup_create(keys.stream, keys.group, id="$")
    finally:
        client.close()
    await eventually(lambda: _is_refused(verifier_for(plain, feed), alice, "revoked"), within=3)


async def _read_past(feed: RevocationFeed, entry_id: str) -> bool:
    return feed.follower.last_id not in (entry_id, entry_id.encode())


# -- key changes -------------------------------------------------------------------------


async def test_a_key_rotated_at_one_process_signs_at_another_at_once(
    redis_prefix: str, make_api: AppFactory
) -> None:
    # A poll interval far beyond the test: only the Redis event can carry the change.
    shared = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix,
              "revocation_poll_interval": 60}
    here = await make_api(**shared)
    there = await make_api(clock=here.clock, **shared)
    kid = await here.server.keys.rotate_keys()

    async def signs_with_new_key() -> bool:
        return bool(there.service.keyring.signing_key.kid == kid)

    await eventually(signs_with_new_key)


async def test_a_standby_key_promoted_at_one_process_signs_at_the_others(
    make_api: AppFactory,
) -> None:
    here = await make_api(revocation_poll_interval=0.05)
    there = await make_api(clock=here.clock, revocation_poll_interval=0.05)
    kid = await here.server.keys.rotate_keys(lead=60)

    async def published_there() -> bool:
        return kid in there.service.keyring.kids()

    await eventually(published_there)
    assert there.service.keyring.signing_key.kid != kid
    here.clock.advance(61)
    assert await here.server.keys.maintain_keys()  # promoted here, by this process

    async def signs_there() -> bool:
        return bool(there.service.keyring.signing_key.kid == kid)

    await eventually(signs_there)


def test_revocation_kinds_are_the_stream_kinds() -> None:
    assert Event.parse({b"k": b"sid", b"v": b"s1", b"u": b"1.5"}) == Event("sid", "s1", 1.5)
    assert Event.parse({b"k": b"sub", b"v": b"u1", b"u": b"2"}) == Event("sub", "u1", 2.0)
    assert Event.parse({b"k": b"keys", b"v": b"kid-1", b"u": b"3"}) == Event("keys", "kid-1", 3.0)
    assert Event.parse({b"k": b"jti", b"v": b"x", b"u": b"3"}) is None
    # One enum names every kind of the log and the stream; only two are revocations.
    assert {kind.value for kind in RevocationKind} == {"sid", "sub", "keys"}
    with pytest.raises(ValueError, match="not a revocation"):
        RevocationList(lambda: 0.0).add(RevocationKind.KEYS_CHANGED, "kid-1", 3.0)
