"""Building a ``Verifier`` and its options (API.md "Library"), the verified-token cache,
and the claims it hands out, OAuth client tokens (no ``sid``, a ``scope``) included."""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import Any

import pytest

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.keys import SigningKey, key_from_secret
from jwtauth.revocation import RevocationKind, RevocationList

from .kit import (
    ALGS,
    ASYMMETRIC,
    AUDIENCE,
    DROP,
    ISSUER,
    LEEWAY,
    TTL,
    Clock,
    key_for,
    new_key,
    public_entry,
    token,
)


def verifier_for(key: SigningKey, clock: Clock, **options: Any) -> Verifier:
    options = {"issuer": ISSUER, "audience": AUDIENCE, "leeway": LEEWAY, **options}
    return Verifier.from_keys([public_entry(key)], clock=clock, **options)


async def refused(verifier: Verifier, bad: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(bad)
    assert type(caught.value) is InvalidToken
    return caught.value.reason


# -- building a Verifier ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
async def test_from_jwks_verifies(clock: Clock, alg: str) -> None:
    jwks = {"keys": [key_for(each).public_jwk() for each in ASYMMETRIC]}
    verifier = Verifier.from_jwks(jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert (await verifier.verify(token(key_for(alg), clock))).sub == "u-1"


@pytest.mark.parametrize("alg", ASYMMETRIC)
async def test_from_jwks_drops_private_members(clock: Clock, alg: str) -> None:
    key = key_for(alg)
    entry = {**key.jwk.as_dict(private=True), "kid": key.kid, "alg": alg, "use": "sig"}
    assert "d" in entry
    verifier = Verifier.from_jwks({"keys": [entry]}, issuer=ISSUER, audience=AUDIENCE,
                                  clock=clock)
    loaded = verifier.keyring.get(key.kid)
    assert loaded is not None and not loaded.jwk.is_private
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(loaded.jwk.as_dict())
    assert (await verifier.verify(token(key, clock))).sub == "u-1"


@pytest.mark.parametrize("jwks", [{}, {"keys": {}}, [], {"keys": "x"}])
def test_from_jwks_refuses_what_is_not_a_jwks(jwks: Any) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        Verifier.from_jwks(jwks, issuer=ISSUER, audience=AUDIENCE)


@pytest.mark.parametrize("secret", ["s" * 31, b"\x01" * 31, "", secrets.token_urlsafe(16)])
def test_from_secret_refuses_short_secret(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Verifier.from_secret(secret, issuer=ISSUER, audience=AUDIENCE)


async def test_from_secret_verifies_hs256(clock: Clock) -> None:
    secret = secrets.token_urlsafe(32)
    verifier = Verifier.from_secret(secret, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert (await verifier.verify(token(key_from_secret(secret.encode()), clock))).sub == "u-1"
    assert await refused(verifier, token(new_key("HS256"), clock)) == "unknown kid"


def test_every_builder_takes_the_same_typed_keyword_options() -> None:
    # Explicit, typed keywords (no **options): a typo is a TypeError, not ignored.
    wanted = ["issuer", "audience", "algorithms", "leeway", "revocations", "clock",
              "cache_size"]
    for builder in (Verifier.from_keys, Verifier.from_jwks, Verifier.from_secret,
                    Verifier.from_jwks_url):
        parameters = inspect.signature(builder).parameters
        assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values()), builder
        named = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
        assert named[: len(wanted)] == wanted, builder
        assert all(parameters[name].annotation != "Any" for name in wanted), builder
    with pytest.raises(TypeError):
        Verifier.from_secret("s" * 32, issuer=ISSUER, audience=AUDIENCE, leway=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(("options", "error"), [
    ({"audience": ""}, ValueError), ({"audience": []}, ValueError),
    ({"audience": ["a", 7]}, ValueError), ({"issuer": ""}, ValueError),
    ({"algorithms": []}, ValueError), ({"algorithms": ["none"]}, ValueError),
    ({"algorithms": ["ES256", "HS512"]}, ValueError), ({"algorithms": "ES256"}, TypeError),
    ({"leeway": -1}, ValueError), ({"cache_size": 0}, ValueError),
])
def test_unusable_options_are_refused_at_once(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        verifier_for(key_for("ES256"), Clock(), **options)


# -- audience: one or several ----------------------------------------------------------


@pytest.mark.parametrize(("aud", "accepted"), [
    ("api-a", True), ("api-b", True), (["x", "api-b"], True), (AUDIENCE, False),
    (["x", "y"], False), ([], False),
])
async def test_several_audiences_accept_a_token_naming_any_of_them(
    clock: Clock, aud: Any, accepted: bool
) -> None:
    key = key_for("ES256")
    verifier = verifier_for(key, clock, audience=["api-a", "api-b"])
    signed = token(key, clock, aud=aud)
    if accepted:
        assert (await verifier.verify(signed)).sub == "u-1"
    else:
        assert await refused(verifier, signed) == "wrong audience"


# -- algorithms: an allowlist ----------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
async def test_a_key_outside_the_allowlist_verifies_nothing(clock: Clock, alg: str) -> None:
    keys = [key_for(each) for each in ALGS]
    allowed = [each for each in ALGS if each != alg]
    verifier = Verifier.from_keys([public_entry(k) for k in keys], issuer=ISSUER,
                                  audience=AUDIENCE, algorithms=allowed, clock=clock)
    assert verifier.keyring.get(key_for(alg).kid) is None  # not loaded
    assert await refused(verifier, token(key_for(alg), clock)) == "unknown kid"
    for other in allowed:
        assert (await verifier.verify(token(key_for(other), clock))).sub == "u-1"


async def test_the_allowlist_also_binds_a_keyring_built_elsewhere(clock: Clock) -> None:
    # Verifier(keyring, ...) with a keyring someone else fills: the check is per token too.
    es, ed = key_for("ES256"), key_for("EdDSA")
    shared = Verifier.from_keys([es, ed], issuer=ISSUER, audience=AUDIENCE).keyring
    verifier = Verifier(shared, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"],
                        clock=clock)
    assert (await verifier.verify(token(es, clock))).sub == "u-1"
    assert await refused(verifier, token(ed, clock)) == "algorithm not allowed"


def test_an_allowlist_that_leaves_no_key_is_refused() -> None:
    jwks = {"keys": [key_for("RS256").public_jwk()]}
    with pytest.raises(ValueError, match="no usable key"):
        Verifier.from_jwks(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"])
    with pytest.raises(ValueError, match="no key"):
        Verifier.from_secret("s" * 32, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"])


# -- a JWKS with a bad entry -----------------------------------------------------------


async def test_from_jwks_skips_a_malformed_entry_with_a_warning_and_uses_the_rest(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    good = key_for("ES256")
    broken = {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "broken"}  # no x, y
    jwks = {"keys": [broken, good.public_jwk(), "not an object"]}
    with caplog.at_level(logging.WARNING, logger="jwtauth.jwks"):
        verifier = Verifier.from_jwks(jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    assert verifier.keyring.kids() == {good.kid}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and "entry 0" in skipped[0] and "entry 2" in skipped[1]
    assert (await verifier.verify(token(good, clock))).sub == "u-1"


def test_from_keys_refuses_a_malformed_key() -> None:
    # Keys handed over one by one are configuration: a bad one is an error, not a warning.
    with pytest.raises(ValueError, match="required"):
        Verifier.from_keys([{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k"}],
                           issuer=ISSUER, audience=AUDIENCE)


# -- OAuth client tokens: no sid, a scope ----------------------------------------------


async def test_a_token_without_sid_verifies_with_its_scope_and_client_id(clock: Clock) -> None:
    key = key_for("ES256")
    client = token(key, clock, sub="svc-1", sid=DROP, roles=DROP, preferred_username=DROP,
                   client_id="svc-1", scope="reports:read  reports:write")
    claims = await verifier_for(key, clock).verify(client)
    assert (claims.sub, claims.sid, claims.roles, claims.username) == ("svc-1", None, (), None)
    assert claims.scope == ("reports:read", "reports:write") and claims.client_id == "svc-1"
    assert claims.has_scopes("reports:read") and claims.has_scopes("reports:read",
                                                                   "reports:write")
    assert not claims.has_scopes("reports:read", "admin") and not claims.has_role("admin")


async def test_a_token_without_sid_is_ended_by_its_subject_only(clock: Clock) -> None:
    # No session entry, whatever its name, may match a token that has no session; a
    # revocation of its subject (e.g. the client deleted) must.
    key, revocations = key_for("ES256"), RevocationList(clock)
    verifier = verifier_for(key, clock, revocations=revocations)
    client = token(key, clock, sub="svc-1", sid=DROP, client_id="svc-1", scope="a")
    until = clock() + TTL + LEEWAY
    for name in ("None", "", "null", "svc-1"):
        revocations.add(RevocationKind.SESSION, name, until)
    assert (await verifier.verify(client)).sid is None
    revocations.add(RevocationKind.USER, "svc-1", until)
    assert await refused(verifier, client) == "revoked"


# -- the verified-token cache ----------------------------------------------------------


async def test_verified_claims_cannot_be_changed(clock: Clock) -> None:
    # One Claims object answers every repeat of a token from the cache: a handler that
    # could change it would change what the next request is granted.
    key = key_for("ES256")
    verifier, signed = verifier_for(key, clock), token(key, clock, roles=["user", "editor"])
    claims = await verifier.verify(signed)
    with pytest.raises(AttributeError):
        claims.roles = ("admin",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        claims.raw["roles"] = ["admin"]  # type: ignore[index]
    assert await verifier.verify(signed) is claims
    assert claims.raw["roles"] == ["user", "editor"] and hash(claims) == hash(claims)


@pytest.fixture(params=ALGS)
def key(request: pytest.FixtureRequest) -> SigningKey:
    return key_for(request.param)


async def test_repeated_token_verifies_again(key: SigningKey, clock: Clock) -> None:
    verifier, signed = verifier_for(key, clock), token(key, clock)
    first = await verifier.verify(signed)
    clock.advance(60)
    second = await verifier.verify(signed)
    assert isinstance(second, Claims)
    assert (second.sub, second.sid, second.jti, second.exp) == (
        first.sub, first.sid, first.jti, first.exp
    )


async def test_cached_token_refused_after_exp_plus_leeway(key: SigningKey, clock: Clock) -> None:
    verifier, signed = verifier_for(key, clock), token(key, clock)
    await verifier.verify(signed)
    clock.advance(TTL + LEEWAY - 1)
    await verifier.verify(signed)
    clock.advance(2)
    assert await refused(verifier, signed) == "expired"


@pytest.mark.parametrize(
    ("kind", "value"), [(RevocationKind.SESSION, "s-1"), (RevocationKind.USER, "u-1")]
)
async def test_cached_token_refused_after_revocation(
    key: SigningKey, clock: Clock, kind: RevocationKind, value: str
) -> None:
    revocations = RevocationList(clock)
    verifier = verifier_for(key, clock, revocations=revocations)
    signed, bystander = token(key, clock), token(key, clock, sid="s-2", sub="u-2")
    await verifier.verify(signed)
    await verifier.verify(bystander)
    revocations.add(kind, value, until=clock() + TTL + LEEWAY)
    assert await refused(verifier, signed) == "revoked"
    assert (await verifier.verify(bystander)).sid == "s-2"


async def test_cached_token_refused_after_its_key_is_removed(key: SigningKey, clock: Clock) -> None:
    verifier, signed = verifier_for(key, clock), token(key, clock)
    await verifier.verify(signed)
    verifier.keyring.replace([])
    assert await refused(verifier, signed) == "unknown kid"


async def test_the_cache_stays_bounded(clock: Clock) -> None:
    key = key_for("HS256")
    verifier = verifier_for(key, clock, cache_size=10)
    signed = [token(key, clock) for _ in range(25)]
    for each in signed:
        await verifier.verify(each)
    assert len(verifier._cache) <= 10
    assert (await verifier.verify(signed[0])).sub == "u-1"  # dropped, verified afresh
