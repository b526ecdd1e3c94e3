"""Access tokens: TokenIssuer signs, Verifier decides (RFC 9068 profile, RFC 8725 checks).

Every refusal must be one ``InvalidToken``. Attack tokens are signed by hand (attack_kit.sign: hmac
and cryptography directly, not the code under test), so a forged token is wrong in
exactly one way; ``test_hand_signed_token_verifies`` proves the forger itself is sound.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import pytest

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.keys import Keyring, SigningKey, key_from_secret
from jwtauth.revocation import RevocationKind, RevocationList
from jwtauth.server.keys import generate_key
from jwtauth.server.sessions import new_refresh_token
from jwtauth.server.tokens import TokenIssuer
from jwtauth.tokens import ClaimsPolicy

from attack_kit import sign  # signed by hand, not by the code under test
from conftest import Clock

ISS = "https://jwtauth.test"
AUD = "jwtauth"
TTL = 900
LEEWAY = 30
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]
ASYMMETRIC = ["ES256", "RS256", "EdDSA"]
DROP = object()  # a header or claim value meaning "leave this member out"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    made = {alg: generate_key(alg) for alg in ASYMMETRIC}  # type: ignore[arg-type]
    made["HS256"] = key_from_secret(secrets.token_bytes(32))
    return made


@pytest.fixture(params=ALGS)
def key(request: pytest.FixtureRequest, keys: dict[str, SigningKey]) -> SigningKey:
    return keys[request.param]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier_for(key: SigningKey, clock: Clock, **options: Any) -> Verifier:
    """A verifier as a resource server holds it: public JWK only, unless the key is HS256."""
    entry: SigningKey | dict[str, Any] = key.public_jwk() if key.is_asymmetric else key
    return Verifier.from_keys(
        [entry], issuer=ISS, audience=AUD, leeway=LEEWAY, clock=clock, **options
    )


def issue(key: SigningKey, clock: Clock, *, sid: str = "s-1", sub: str = "u-1") -> str:
    issuer = TokenIssuer(Keyring([key]), ClaimsPolicy(ISS, AUD, LEEWAY), TTL, clock)
    return issuer.issue(sub=sub, sid=sid, roles=["user", "editor"], username="alice")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def claims_at(clock: Clock, **changes: Any) -> dict[str, Any]:
    now = int(clock())
    claims = {
        "iss": ISS, "sub": "u-1", "aud": AUD, "iat": now, "nbf": now, "exp": now + TTL,
        "jti": "j-1", "sid": "s-1", "roles": ["user"], **changes,
    }
    return {name: value for name, value in claims.items() if value is not DROP}


def forge(
    key: SigningKey, payload: dict[str, Any] | bytes, *,
    secret: bytes | None = None, **header_changes: Any,
) -> str:
    """A compact JWS signed with ``key`` (or HMAC over ``secret``) and the given header."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header_changes}
    header = {name: value for name, value in header.items() if value is not DROP}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}".encode()
    if secret is None:
        signature = sign(key, signing_input)
    else:
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


async def refused(verifier: Verifier, token: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    assert type(caught.value) is InvalidToken


# -- what a good token gives -----------------------------------------------------------


async def test_issued_token_verifies_to_claims(key: SigningKey, clock: Clock) -> None:
    token = issue(key, clock)
    claims = await verifier_for(key, clock).verify(token)
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.sid, claims.roles) == ("u-1", "s-1", ("user", "editor"))
    assert claims.exp == int(clock()) + TTL
    assert claims.raw["iss"] == ISS and claims.raw["aud"] == AUD
    assert claims.raw["preferred_username"] == "alice" and claims.raw["jti"] == claims.jti
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}


async def test_hand_signed_token_verifies(key: SigningKey, clock: Clock) -> None:
    claims = await verifier_for(key, clock).verify(forge(key, claims_at(clock)))
    assert claims.sub == "u-1" and claims.roles == ("user",)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
async def test_at_jwt_typ_variants_accepted(key: SigningKey, clock: Clock, typ: str) -> None:
    await verifier_for(key, clock).verify(forge(key, claims_at(clock), typ=typ))


async def test_audience_list_with_ours_accepted(key: SigningKey, clock: Clock) -> None:
    token = forge(key, claims_at(clock, aud=["other", AUD]))
    assert (await verifier_for(key, clock).verify(token)).sub == "u-1"


# -- claims checks ---------------------------------------------------------------------


async def test_wrong_issuer_refused(key: SigningKey, clock: Clock) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock, iss="https://evil.test")))
    other = Verifier.from_keys(
        [key.public_jwk() if key.is_asymmetric else key], issuer="https://other.test",
        audience=AUD, clock=clock,
    )
    await refused(other, issue(key, clock))


@pytest.mark.parametrize("aud", ["other", ["other", "another"], [], None, DROP])
async def test_wrong_audience_refused(key: SigningKey, clock: Clock, aud: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock, aud=aud)))


async def test_expired_beyond_leeway_refused(key: SigningKey, clock: Clock) -> None:
    token = issue(key, clock)
    clock.advance(TTL + LEEWAY + 1)
    await refused(verifier_for(key, clock), token)


async def test_expired_within_leeway_accepted(key: SigningKey, clock: Clock) -> None:
    token = issue(key, clock)
    clock.advance(TTL + LEEWAY - 1)
    assert (await verifier_for(key, clock).verify(token)).sid == "s-1"


async def test_nbf_in_future_beyond_leeway_refused(key: SigningKey, clock: Clock) -> None:
    later = int(clock()) + LEEWAY + 60
    await refused(verifier_for(key, clock), forge(key, claims_at(clock, nbf=later)))


async def test_nbf_in_future_within_leeway_accepted(key: SigningKey, clock: Clock) -> None:
    soon = int(clock()) + LEEWAY - 5
    await verifier_for(key, clock).verify(forge(key, claims_at(clock, nbf=soon)))


@pytest.mark.parametrize("exp", [DROP, None, "9999999999", True])
async def test_missing_or_non_numeric_exp_refused(key: SigningKey, clock: Clock, exp: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock, exp=exp)))


# -- header checks ---------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "jwt", "", DROP, None])
async def test_typ_other_than_at_jwt_refused(key: SigningKey, clock: Clock, typ: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock), typ=typ))


@pytest.mark.parametrize("none", ["none", "None", "NONE"])
@pytest.mark.parametrize("with_signature", [False, True])
async def test_alg_none_refused(
    key: SigningKey, clock: Clock, none: str, with_signature: bool
) -> None:
    token = forge(key, claims_at(clock), alg=none)
    if not with_signature:
        token = token.rsplit(".", 1)[0] + "."
    await refused(verifier_for(key, clock), token)


async def test_header_alg_other_than_key_alg_refused(key: SigningKey, clock: Clock) -> None:
    # Signed correctly with the key's own algorithm: only the header's alg is wrong.
    verifier = verifier_for(key, clock)
    for other in ["HS256", "RS256", "ES256", "EdDSA", "ES384", "PS256", "HS512"]:
        if other != key.alg:
            await refused(verifier, forge(key, claims_at(clock), alg=other))


@pytest.mark.parametrize("alg", ASYMMETRIC)
@pytest.mark.parametrize("form", ["pem", "jwk"])
async def test_algorithm_confusion_hmac_over_public_key_refused(
    keys: dict[str, SigningKey], clock: Clock, alg: str, form: str
) -> None:
    # The public key is public: an HS256 token keyed with it must not pass (RFC 8725 2.1).
    key = keys[alg]
    public = (
        key.jwk.as_pem(private=False) if form == "pem"
        else json.dumps(key.public_jwk()).encode()
    )
    token = forge(key, claims_at(clock, roles=["admin"]), secret=public, alg="HS256")
    await refused(verifier_for(key, clock), token)


@pytest.mark.parametrize("kid", ["unknown-kid", "", 42, None, DROP])
async def test_unknown_or_missing_kid_refused(key: SigningKey, clock: Clock, kid: Any) -> None:
    await refused(verifier_for(key, clock), forge(key, claims_at(clock), kid=kid))


async def test_kid_of_another_key_refused(keys: dict[str, SigningKey], clock: Clock) -> None:
    # An ES256 signature presented under the EdDSA key's kid.
    es, ed = keys["ES256"], keys["EdDSA"]
    verifier = Verifier.from_keys(
        [es.public_jwk(), ed.public_jwk()], issuer=ISS, audience=AUD, clock=clock
    )
    await refused(verifier, forge(es, claims_at(clock), kid=ed.kid, alg="EdDSA"))
    await refused(verifier, forge(es, claims_at(clock), kid=ed.kid))


async def test_crit_header_refused(key: SigningKey, clock: Clock) -> None:
    token = forge(key, claims_at(clock), crit=["exp"], exp=int(clock()) + TTL)
    await refused(verifier_for(key, clock), token)


# -- signature and shape ---------------------------------------------------------------


@pytest.mark.parametrize("cut", ["truncated", "stripped", "absent", "flipped"])
async def test_damaged_signature_refused(key: SigningKey, clock: Clock, cut: str) -> None:
    token = issue(key, clock)
    head, payload, signature = token.split(".")
    damaged = {
        "truncated": f"{head}.{payload}.{signature[:-6]}",
        "stripped": f"{head}.{payload}.",
        "absent": f"{head}.{payload}",
        "flipped": f"{head}.{payload}.{b64(bytes(b ^ 1 for b in unb64(signature)))}",
    }[cut]
    await refused(verifier_for(key, clock), damaged)


async def test_tampered_payload_refused(key: SigningKey, clock: Clock) -> None:
    head, payload, signature = issue(key, clock).split(".")
    claims = json.loads(unb64(payload))
    claims["roles"] = ["user", "admin"]
    await refused(
        verifier_for(key, clock), f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    )


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


async def test_verified_claims_cannot_be_changed(key: SigningKey, clock: Clock) -> None:
    # One Claims object answers every repeat of a token from the cache: a handler that
    # could change it would change what the next request is granted.
    verifier, token = verifier_for(key, clock), issue(key, clock)
    claims = await verifier.verify(token)
    with pytest.raises(AttributeError):
        claims.roles = ("admin",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        claims.raw["roles"] = ["admin"]  # type: ignore[index]
    assert await verifier.verify(token) is claims
    assert claims.raw["roles"] == ["user", "editor"] and hash(claims) == hash(claims)


@pytest.mark.parametrize(
    "payload", [b"not json", b"", b"[1, 2]", b'"a string"', b"\xff\xfe{}", b"null"]
)
async def test_payload_not_a_json_object_refused(
    key: SigningKey, clock: Clock, payload: bytes
) -> None:
    await refused(verifier_for(key, clock), forge(key, payload))


async def test_token_over_8192_bytes_refused(key: SigningKey, clock: Clock) -> None:
    verifier = verifier_for(key, clock)
    fits = forge(key, claims_at(clock, pad="x" * 5600))
    assert 7800 < len(fits) <= 8192
    await verifier.verify(fits)  # the size alone decides below
    too_long = forge(key, claims_at(clock, pad="x" * 6300))
    assert len(too_long) > 8192
    await refused(verifier, too_long)


async def test_four_segments_refused(key: SigningKey, clock: Clock) -> None:
    token = issue(key, clock)
    head, payload, signature = token.split(".")
    verifier = verifier_for(key, clock)
    await refused(verifier, token + "." + signature)
    await refused(verifier, f"{head}.{payload}.{signature}.")


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "...", "é.é.é", "Bearer x.y.z", " " * 10]
)
async def test_garbage_refused(key: SigningKey, clock: Clock, garbage: str) -> None:
    await refused(verifier_for(key, clock), garbage)


async def test_refresh_token_refused_as_access_token(key: SigningKey, clock: Clock) -> None:
    await refused(verifier_for(key, clock), new_refresh_token())


# -- the verified-token cache ----------------------------------------------------------


async def test_repeated_token_verifies_again(key: SigningKey, clock: Clock) -> None:
    verifier, token = verifier_for(key, clock), issue(key, clock)
    first = await verifier.verify(token)
    clock.advance(60)
    second = await verifier.verify(token)
    assert (second.sub, second.sid, second.jti, second.exp) == (
        first.sub, first.sid, first.jti, first.exp
    )


async def test_cached_token_refused_after_exp_plus_leeway(key: SigningKey, clock: Clock) -> None:
    verifier, token = verifier_for(key, clock), issue(key, clock)
    await verifier.verify(token)
    clock.advance(TTL + LEEWAY - 1)
    await verifier.verify(token)
    clock.advance(2)
    await refused(verifier, token)


@pytest.mark.parametrize(
    ("kind", "value"), [(RevocationKind.SESSION, "s-1"), (RevocationKind.USER, "u-1")]
)
async def test_cached_token_refused_after_revocation(
    key: SigningKey, clock: Clock, kind: RevocationKind, value: str
) -> None:
    revocations = RevocationList(clock)
    verifier = verifier_for(key, clock, revocations=revocations)
    token, bystander = issue(key, clock), issue(key, clock, sid="s-2", sub="u-2")
    await verifier.verify(token)
    await verifier.verify(bystander)
    revocations.add(kind, value, until=clock() + TTL + LEEWAY)
    await refused(verifier, token)
    assert (await verifier.verify(bystander)).sid == "s-2"


async def test_cached_token_refused_after_its_key_is_removed(key: SigningKey, clock: Clock) -> None:
    verifier, token = verifier_for(key, clock), issue(key, clock)
    await verifier.verify(token)
    verifier.keyring.replace([])
    await refused(verifier, token)


# -- building a Verifier ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
async def test_from_jwks_verifies(keys: dict[str, SigningKey], clock: Clock, alg: str) -> None:
    key = keys[alg]
    jwks = {"keys": [keys[each].public_jwk() for each in ASYMMETRIC]}
    verifier = Verifier.from_jwks(jwks, issuer=ISS, audience=AUD, clock=clock)
    assert (await verifier.verify(issue(key, clock))).sub == "u-1"


@pytest.mark.parametrize("alg", ASYMMETRIC)
async def test_from_jwks_drops_private_members(
    keys: dict[str, SigningKey], clock: Clock, alg: str
) -> None:
    key = keys[alg]
    entry = {**key.jwk.as_dict(private=True), "kid": key.kid, "alg": alg, "use": "sig"}
    assert "d" in entry
    verifier = Verifier.from_jwks({"keys": [entry]}, issuer=ISS, audience=AUD, clock=clock)
    loaded = verifier.keyring.get(key.kid)
    assert loaded is not None and not loaded.jwk.is_private
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(loaded.jwk.as_dict())
    assert (await verifier.verify(issue(key, clock))).sub == "u-1"


@pytest.mark.parametrize("secret", ["s" * 31, b"\x01" * 31, "", secrets.token_urlsafe(16)])
def test_from_secret_refuses_short_secret(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Verifier.from_secret(secret, issuer=ISS, audience=AUD)


async def test_from_secret_verifies_hs256(clock: Clock) -> None:
    secret = secrets.token_urlsafe(32)
    verifier = Verifier.from_secret(secret, issuer=ISS, audience=AUD, clock=clock)
    token = issue(key_from_secret(secret.encode()), clock)
    assert (await verifier.verify(token)).sub == "u-1"
    await refused(verifier, issue(key_from_secret(secrets.token_bytes(32)), clock))
