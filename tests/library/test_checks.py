"""What ``Verifier.verify`` refuses: every claim, header and shape check of an access token
(RFC 9068 profile, RFC 8725), across the four algorithms.

Every refusal must be exactly one ``InvalidToken``. Tokens are signed by hand (kit.forge),
so a forged token is wrong in exactly one way; ``test_hand_signed_token_verifies`` proves
the forger itself is sound.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.keys import SigningKey

from .kit import (
    ALGS,
    ASYMMETRIC,
    AUDIENCE,
    DROP,
    ISSUER,
    LEEWAY,
    TTL,
    Clock,
    b64,
    claims_at,
    forge,
    key_for,
    public_entry,
    token,
    unb64,
)


@pytest.fixture(params=ALGS)
def key(request: pytest.FixtureRequest) -> SigningKey:
    return key_for(request.param)


def verifier_for(key: SigningKey, clock: Clock, **options: Any) -> Verifier:
    """A verifier as a resource server holds it: public JWK only, unless the key is HS256."""
    return Verifier.from_keys(
        [public_entry(key)], issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, clock=clock,
        **options,
    )


async def refused(verifier: Verifier, bad: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(bad)
    assert type(caught.value) is InvalidToken
    return caught.value.reason


# -- what a good token gives -----------------------------------------------------------


async def test_hand_signed_token_verifies(key: SigningKey, clock: Clock) -> None:
    claims = await verifier_for(key, clock).verify(token(key, clock, roles=["user", "editor"]))
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.sid, claims.roles, claims.username) == (
        "u-1", "s-1", ("user", "editor"), "alice")
    assert claims.exp == int(clock()) + TTL and claims.iss == ISSUER
    assert claims.raw["aud"] == AUDIENCE and claims.raw["jti"] == claims.jti
    assert (claims.scope, claims.client_id) == ((), None)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
async def test_at_jwt_typ_variants_accepted(key: SigningKey, clock: Clock, typ: str) -> None:
    await verifier_for(key, clock).verify(forge(key, claims_at(clock), typ=typ))


async def test_audience_list_with_ours_accepted(key: SigningKey, clock: Clock) -> None:
    claims = await verifier_for(key, clock).verify(token(key, clock, aud=["other", AUDIENCE]))
    assert claims.sub == "u-1"


# -- claims checks ---------------------------------------------------------------------


async def test_wrong_issuer_refused(key: SigningKey, clock: Clock) -> None:
    await refused(verifier_for(key, clock), token(key, clock, iss="https://evil.test"))
    other = Verifier.from_keys(
        [public_entry(key)], issuer="https://other.test", audience=AUDIENCE, clock=clock
    )
    assert await refused(other, token(key, clock)) == "wrong issuer"


@pytest.mark.parametrize("aud", ["other", ["other", "another"], [], None, DROP, {"a": 1}])
async def test_wrong_audience_refused(key: SigningKey, clock: Clock, aud: Any) -> None:
    assert await refused(verifier_for(key, clock), token(key, clock, aud=aud)) == "wrong audience"


async def test_expired_beyond_leeway_refused(key: SigningKey, clock: Clock) -> None:
    good = token(key, clock)
    clock.advance(TTL + LEEWAY + 1)
    assert await refused(verifier_for(key, clock), good) == "expired"


async def test_expired_within_leeway_accepted(key: SigningKey, clock: Clock) -> None:
    good = token(key, clock)
    clock.advance(TTL + LEEWAY - 1)
    assert (await verifier_for(key, clock).verify(good)).sid == "s-1"


async def test_nbf_in_future_beyond_leeway_refused(key: SigningKey, clock: Clock) -> None:
    later = int(clock()) + LEEWAY + 60
    assert await refused(verifier_for(key, clock), token(key, clock, nbf=later)) \
        == "not yet valid"


async def test_nbf_in_future_within_leeway_accepted(key: SigningKey, clock: Clock) -> None:
    soon = int(clock()) + LEEWAY - 5
    await verifier_for(key, clock).verify(token(key, clock, nbf=soon))


@pytest.mark.parametrize("exp", [DROP, None, "9999999999", True])
async def test_missing_or_non_numeric_exp_refused(key: SigningKey, clock: Clock, exp: Any) -> None:
    await refused(verifier_for(key, clock), token(key, clock, exp=exp))


@pytest.mark.parametrize("claim", ["sub", "jti"])
@pytest.mark.parametrize("value", [DROP, None, "", 7, ["u-1"]])
async def test_sub_and_jti_must_be_non_empty_strings(
    key: SigningKey, clock: Clock, claim: str, value: Any
) -> None:
    await refused(verifier_for(key, clock), token(key, clock, **{claim: value}))


@pytest.mark.parametrize("value", [None, "", 7, ["s-1"]])
async def test_a_sid_that_is_present_must_be_a_non_empty_string(
    key: SigningKey, clock: Clock, value: Any
) -> None:
    # A session revocation could never match such a token: refused, not read as "no sid".
    await refused(verifier_for(key, clock), token(key, clock, sid=value))


@pytest.mark.parametrize(("claim", "value"), [
    ("scope", ["read"]), ("scope", 7), ("scope", None), ("client_id", 7), ("client_id", None),
    ("roles", "admin"), ("roles", ["admin", 1]),
])
async def test_scope_client_id_and_roles_of_the_wrong_type_refused(
    key: SigningKey, clock: Clock, claim: str, value: Any
) -> None:
    await refused(verifier_for(key, clock), token(key, clock, **{claim: value}))


# -- header checks ---------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "jwt", "", DROP, None])
async def test_typ_other_than_at_jwt_refused(key: SigningKey, clock: Clock, typ: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock), typ=typ))


@pytest.mark.parametrize("none", ["none", "None", "NONE"])
@pytest.mark.parametrize("with_signature", [False, True])
async def test_alg_none_refused(
    key: SigningKey, clock: Clock, none: str, with_signature: bool
) -> None:
    forged = forge(key, claims_at(clock), alg=none)
    if not with_signature:
        forged = forged.rsplit(".", 1)[0] + "."
    await refused(verifier_for(key, clock), forged)


async def test_header_alg_other_than_key_alg_refused(key: SigningKey, clock: Clock) -> None:
    # Signed correctly with the key's own algorithm: only the header's alg is wrong.
    verifier = verifier_for(key, clock)
    for other in ["HS256", "RS256", "ES256", "EdDSA", "ES384", "PS256", "HS512"]:
        if other != key.alg:
            await refused(verifier, forge(key, claims_at(clock), alg=other))


@pytest.mark.parametrize("alg", ASYMMETRIC)
@pytest.mark.parametrize("form", ["pem", "jwk"])
async def test_algorithm_confusion_hmac_over_public_key_refused(
    clock: Clock, alg: str, form: str
) -> None:
    # The public key is public: an HS256 token keyed with it must not pass (RFC 8725 2.1).
    key = key_for(alg)
    public = (
        key.jwk.as_pem(private=False) if form == "pem"
        else json.dumps(key.public_jwk()).encode()
    )
    forged = forge(key, claims_at(clock, roles=["admin"]), secret=public, alg="HS256")
    await refused(verifier_for(key, clock), forged)


@pytest.mark.parametrize("kid", ["unknown-kid", "", 42, None, DROP])
async def test_unknown_or_missing_kid_refused(key: SigningKey, clock: Clock, kid: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock), kid=kid))


async def test_kid_of_another_key_refused(clock: Clock) -> None:
    # An ES256 signature presented under the EdDSA key's kid.
    es, ed = key_for("ES256"), key_for("EdDSA")
    verifier = Verifier.from_keys(
        [es.public_jwk(), ed.public_jwk()], issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    await refused(verifier, forge(es, claims_at(clock), kid=ed.kid, alg="EdDSA"))
    await refused(verifier, forge(es, claims_at(clock), kid=ed.kid))


async def test_crit_header_refused(key: SigningKey, clock: Clock) -> None:
    forged = forge(key, claims_at(clock), crit=["exp"], exp=int(clock()) + TTL)
    await refused(verifier_for(key, clock), forged)


# -- signature and shape ---------------------------------------------------------------


@pytest.mark.parametrize("cut", ["truncated", "stripped", "absent", "flipped"])
async def test_damaged_signature_refused(key: SigningKey, clock: Clock, cut: str) -> None:
    head, payload, signature = token(key, clock).split(".")
    damaged = {
        "truncated": f"{head}.{payload}.{signature[:-6]}",
        "stripped": f"{head}.{payload}.",
        "absent": f"{head}.{payload}",
        "flipped": f"{head}.{payload}.{b64(bytes(b ^ 1 for b in unb64(signature)))}",
    }[cut]
    await refused(verifier_for(key, clock), damaged)


async def test_tampered_payload_refused(key: SigningKey, clock: Clock) -> None:
    head, payload, signature = token(key, clock).split(".")
    claims = json.loads(unb64(payload))
    claims["roles"] = ["user", "admin"]
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert await refused(verifier_for(key, clock), tampered) == "bad signature"


async def test_duplicate_claim_names_refused(key: SigningKey, clock: Clock) -> None:
    good = json.dumps(claims_at(clock))
    payload = (good[:-1] + ', "sub": "admin-user"}').encode()
    assert json.loads(payload)["sub"] == "admin-user"  # a lax parser would take the last
    await refused(verifier_for(key, clock), forge(key, payload))


@pytest.mark.parametrize(
    "repeat", [',"sub":"admin-user"', ',"roles":["admin"]', ',"cnf":{"jkt":"a","jkt":"b"}']
)
async def test_duplicate_claim_names_refused_in_compact_json(
    key: SigningKey, clock: Clock, repeat: str
) -> None:
    # Written the way the issuer and orjson write JSON (no spaces): the fast reader keeps
    # the last duplicate, so only its round-trip check stands between this and admin.
    good = json.dumps(claims_at(clock), separators=(",", ":"))
    await refused(verifier_for(key, clock), forge(key, (good[:-1] + repeat + "}").encode()))


async def test_compact_json_with_escapes_and_nesting_accepted(
    key: SigningKey, clock: Clock
) -> None:
    # What the fast reader cannot prove it reads exactly goes to the exact reader: still good.
    payload = json.dumps(
        claims_at(clock, name="Zo\u00eb \"Z\"", cnf={"jkt": "a"}, amr=["pwd"]),
        separators=(",", ":"),
    )
    claims = await verifier_for(key, clock).verify(forge(key, payload.encode()))
    assert claims.raw["name"] == 'Zo\u00eb "Z"' and claims.raw["cnf"] == {"jkt": "a"}


@pytest.mark.parametrize(
    "payload", [b"not json", b"", b"[1, 2]", b'"a string"', b"\xff\xfe{}", b"null"]
)
async def test_payload_not_a_json_object_refused(
    key: SigningKey, clock: Clock, payload: bytes
) -> None:
    await refused(verifier_for(key, clock), forge(key, payload))


async def test_token_over_8192_bytes_refused(key: SigningKey, clock: Clock) -> None:
    verifier = verifier_for(key, clock)
    short = {"jti": "j-1", "preferred_username": DROP}
    fits = forge(key, claims_at(clock, pad="x" * 5600, **short))
    assert 7800 < len(fits) <= 8192
    await verifier.verify(fits)  # the size alone decides below
    too_long = forge(key, claims_at(clock, pad="x" * 6300, **short))
    assert len(too_long) > 8192
    assert await refused(verifier, too_long) == "token too large"


async def test_four_segments_refused(key: SigningKey, clock: Clock) -> None:
    good = token(key, clock)
    head, payload, signature = good.split(".")
    verifier = verifier_for(key, clock)
    await refused(verifier, good + "." + signature)
    await refused(verifier, f"{head}.{payload}.{signature}.")


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "...", "é.é.é", "Bearer x.y.z", " " * 10, None, b"a.b.c"]
)
async def test_garbage_refused(key: SigningKey, clock: Clock, garbage: Any) -> None:
    await refused(verifier_for(key, clock), garbage)
