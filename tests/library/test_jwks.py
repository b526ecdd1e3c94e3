"""API.md "Library": the rules of ``Verifier.from_jwks_url``'s JWKS cache, against a small
key server on loopback whose answers and request count the tests control (kit.KeyServer).
The same against a real jwtauth server is tests/test_jwks_server.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from jwtauth import InvalidToken, Verifier
from jwtauth.keys import SigningKey

from .kit import AUDIENCE, ISSUER, Clock, KeyServer, claims_at, forge, new_key

MAX_STALE = 600


@pytest.fixture
def key() -> SigningKey:
    return new_key("ES256")


@pytest.fixture
def key_server(key: SigningKey) -> Iterator[KeyServer]:
    server = KeyServer()
    server.keys = [key.public_jwk()]
    yield server
    server.stop()


@pytest.fixture
def attacker_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.stop()


VerifierFactory = Callable[..., Awaitable[Verifier]]


@pytest.fixture
async def make_verifier() -> AsyncIterator[VerifierFactory]:
    made: list[Verifier] = []

    async def build(url: str, clock: Clock, **options: Any) -> Verifier:
        options = {"issuer": ISSUER, "audience": AUDIENCE, "max_stale": MAX_STALE, **options}
        verifier = Verifier.from_jwks_url(url, clock=clock, **options)
        made.append(verifier)
        return verifier

    yield build
    for verifier in made:
        await verifier.aclose()


def sign(key: SigningKey, clock: Clock, **header: Any) -> str:
    """An access token as the server makes it, signed by ``key``, with extra header members."""
    return forge(key, claims_at(clock, sub="42"), **header)


async def refused(verifier: Verifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.reason


# -- Fetching and refetching ------------------------------------------------------------


async def test_concurrent_first_use_fetches_once_and_known_kids_need_no_more_fetches(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    tokens = [sign(key, clock) for _ in range(10)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [claims.sub for claims in results] == ["42"] * 10
    for token in tokens:
        await verifier.verify(token)
    assert key_server.count == 1


async def test_an_unknown_kid_refetches_at_most_once_per_min_refetch_interval(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, min_refetch_interval=5)
    await verifier.verify(sign(key, clock))
    strangers = [sign(new_key("ES256"), clock) for _ in range(20)]
    assert {await refused(verifier, token) for token in strangers} == {"unknown kid"}
    assert key_server.count == 1  # the first fetch was less than 5 s ago
    clock.advance(5)
    reasons = await asyncio.gather(*(refused(verifier, token) for token in strangers))
    assert set(reasons) == {"unknown kid"}
    assert key_server.count == 2
    clock.advance(4.9)
    assert await refused(verifier, strangers[0]) == "unknown kid"
    assert key_server.count == 2
    clock.advance(0.1)
    assert await refused(verifier, strangers[0]) == "unknown kid"
    assert key_server.count == 3


async def test_concurrent_callers_with_a_newly_published_kid_share_one_refetch(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    published = new_key("EdDSA")
    key_server.keys = [key.public_jwk(), published.public_jwk()]
    clock.advance(5)
    tokens = [sign(published, clock) for _ in range(10)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [claims.sub for claims in results] == ["42"] * 10
    assert key_server.count == 2
    assert verifier.keyring.kids() == {key.kid, published.kid}


async def test_unusable_entries_are_skipped_and_logged_and_the_rest_are_used(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    weak = {"kty": "oct", "alg": "HS256", "kid": "shared", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}
    encryption = {**new_key("ES256").public_jwk(), "use": "enc"}
    key_server.keys = [weak, encryption, key.public_jwk()]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    with caplog.at_level("WARNING", logger="jwtauth.jwks"):
        assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert verifier.keyring.kids() == {key.kid}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2


async def test_background_refresh_picks_up_new_keys_after_the_refresh_interval(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, refresh_interval=300)
    token = sign(key, clock)
    await verifier.verify(token)
    published = new_key("ES256")
    key_server.keys = [key.public_jwk(), published.public_jwk()]
    clock.advance(301)
    await verifier.verify(token)  # answers from memory and wakes the refresher
    for _ in range(200):  # bounded: at most 10 s for the background task
        if published.kid in verifier.keyring.kids():
            break
        await asyncio.sleep(0.05)
    assert verifier.keyring.kids() == {key.kid, published.kid}
    assert key_server.count == 2


@pytest.mark.parametrize(
    ("cache_control", "interval"),
    [(None, 300), ("public, max-age=60", 60), ("max-age=5", 30), ("max-age=3600", 300),
     ("no-cache", 30)],
)
async def test_the_refresh_interval_follows_a_shorter_max_age_but_not_below_30_s(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory,
    cache_control: str | None, interval: int,
) -> None:
    key_server.cache_control = cache_control
    verifier = await make_verifier(key_server.url, Clock(), refresh_interval=300)
    assert verifier.jwks is not None
    assert await verifier.jwks.start() is True
    assert verifier.jwks.effective_refresh_interval == interval


async def test_an_etag_revalidation_answered_304_keeps_and_renews_the_key_set(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    key_server.etag = '"v1"'
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, max_stale=60)
    token = sign(key, clock)
    await verifier.verify(token)
    version = verifier.keyring.version
    clock.advance(50)
    assert await refused(verifier, sign(new_key("ES256"), clock)) == "unknown kid"
    assert key_server.count == 2
    assert key_server.requests[1].get("If-None-Match") == '"v1"'
    assert "If-None-Match" not in key_server.requests[0]
    assert verifier.keyring.version == version  # nothing replaced, verified tokens stay cached
    key_server.stop()
    clock.advance(50)  # 100 s after the 200, 50 s after the 304: still within max_stale
    assert (await verifier.verify(token)).sub == "42"


# -- Stale-if-error ---------------------------------------------------------------------


async def test_known_kids_keep_verifying_while_the_key_server_is_down(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    key_server.stop()
    clock.advance(MAX_STALE - 1)
    assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert await refused(verifier, sign(new_key("ES256"), clock)) == "unknown kid"
    assert verifier.keyring.kids() == {key.kid}


@pytest.mark.parametrize("mode", ["500", "not-json", "no-keys-list", "unusable-keys", "huge"])
async def test_a_bad_answer_from_the_key_server_keeps_the_last_good_key_set(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory, mode: str
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    token = sign(key, clock)
    await verifier.verify(token)
    key_server.mode = mode
    clock.advance(5)
    assert await refused(verifier, sign(new_key("ES256"), clock)) == "unknown kid"
    assert key_server.count == 2  # the refetch happened and its answer was refused
    assert verifier.keyring.kids() == {key.kid}
    assert (await verifier.verify(token)).sub == "42"


async def test_beyond_max_stale_verification_fails_closed_until_the_keys_come_back(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    token = sign(key, clock)
    await verifier.verify(token)  # now remembered by the verifier's cache too
    key_server.mode = "500"
    clock.advance(MAX_STALE + 1)
    assert await refused(verifier, token) == "keys unavailable"
    with pytest.raises(InvalidToken):
        verifier.verify_sync(token)
    key_server.mode = "ok"
    clock.advance(5)
    assert (await verifier.verify(token)).sub == "42"


async def test_a_key_server_that_never_answered_fails_closed(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    key_server.stop()
    verifier = await make_verifier(key_server.url, Clock())
    assert await refused(verifier, sign(key, Clock())) == "keys unavailable"


# -- Nothing in a token chooses what is fetched -----------------------------------------


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk"])
@pytest.mark.parametrize("kid_known", [True, False], ids=["known-kid", "unknown-kid"])
async def test_a_url_or_key_named_in_the_token_header_is_never_used(
    key: SigningKey, key_server: KeyServer, attacker_server: KeyServer,
    make_verifier: VerifierFactory, member: str, kid_known: bool,
) -> None:
    attacker = new_key("ES256")
    attacker_server.keys = [attacker.public_jwk()]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    await verifier.verify(sign(key, clock))
    clock.advance(5)
    value: Any = attacker.public_jwk() if member == "jwk" else attacker_server.url
    header = {member: value, "kid": key.kid if kid_known else attacker.kid}
    token = sign(attacker, clock, **header)
    assert await refused(verifier, token) == ("bad signature" if kid_known else "unknown kid")
    assert attacker_server.count == 0
    assert key_server.count == (1 if kid_known else 2)


async def test_a_redirect_from_the_key_server_is_not_followed(
    key: SigningKey, key_server: KeyServer, attacker_server: KeyServer,
    make_verifier: VerifierFactory,
) -> None:
    attacker = new_key("ES256")
    attacker_server.keys = [attacker.public_jwk()]
    key_server.mode, key_server.redirect_to = "redirect", attacker_server.url
    verifier = await make_verifier(key_server.url, Clock())
    assert await refused(verifier, sign(attacker, Clock())) == "keys unavailable"
    assert attacker_server.count == 0


@pytest.mark.parametrize(("url", "allow_insecure", "accepted"), [
    ("https://keys.example.com/.well-known/jwks.json", False, True),
    ("http://127.0.0.1:8000/jwks.json", False, True),
    ("http://localhost/jwks.json", False, True),
    ("http://[::1]:8000/jwks.json", False, True),
    ("http://keys.example.com/.well-known/jwks.json", False, False),
    ("http://10.0.0.8/jwks.json", False, False),
    ("http://keys.internal/jwks.json", True, True),
    ("ftp://127.0.0.1/jwks.json", True, False),
    ("/.well-known/jwks.json", True, False),
])
def test_a_jwks_url_must_be_https_unless_on_loopback_or_insecure_is_allowed(
    url: str, allow_insecure: bool, accepted: bool
) -> None:
    if not accepted:
        with pytest.raises(ValueError):
            Verifier.from_jwks_url(url, issuer=ISSUER, audience=AUDIENCE,
                                   allow_insecure=allow_insecure)
        return
    verifier = Verifier.from_jwks_url(url, issuer=ISSUER, audience=AUDIENCE,
                                      allow_insecure=allow_insecure)
    assert verifier.jwks is not None and verifier.jwks.fetches == 0  # no I/O until used


# -- Malformed keys and the algorithm allowlist -----------------------------------------


async def test_regression_a_jwks_entry_joserfc_refuses_never_escapes_verify(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    # An EC entry without "x": joserfc raised KeyParameterError out of verify (a 500 at
    # the protected route). Now the entry is skipped, and with nothing else published
    # verify says InvalidToken like for any other unusable key set.
    broken = {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "broken", "y": 5}
    key_server.keys = [broken]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock)
    assert await refused(verifier, sign(key, clock)) == "keys unavailable"
    key_server.keys = [broken, key.public_jwk()]
    clock.advance(5)
    assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert verifier.keyring.kids() == {key.kid}
    assert await refused(verifier, sign(key, clock, kid="broken")) == "unknown kid"


async def test_keys_outside_the_allowlist_are_never_loaded_from_the_jwks(
    key: SigningKey, key_server: KeyServer, make_verifier: VerifierFactory
) -> None:
    rsa = new_key("RS256")
    key_server.keys = [key.public_jwk(), rsa.public_jwk()]
    clock = Clock()
    verifier = await make_verifier(key_server.url, clock, algorithms=["ES256"])
    assert (await verifier.verify(sign(key, clock))).sub == "42"
    assert verifier.keyring.kids() == {key.kid}
    assert await refused(verifier, sign(rsa, clock)) == "unknown kid"
