"""Attacks through the JWS header (RFC 8725 sections 2.1-2.3, 3.1, 3.10-3.11), each a
named regression test against the server (every protected route on ES256, a sample on
the other algorithms) and the library's ``Verifier``. See attack_kit.py for the setup."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from jwtauth import Verifier
from jwtauth.keys import SigningKey
from jwtauth.server.keys import generate_key

from attack_kit import (
    ALGS,
    AUDIENCE,
    ISSUER,
    PUBLIC,
    KeyServer,
    Target,
    b64,
    refused,
    refused_by_verifier,
    sign,
    signed,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def attacker() -> dict[str, SigningKey | bytes]:
    """The attacker's own keys: one of each algorithm we accept."""
    keys: dict[str, SigningKey | bytes] = {alg: generate_key(alg) for alg in ALGS[:3]}  # type: ignore[arg-type]
    keys["HS256"] = b"attacker-chosen-hmac-secret-of-32+bytes"
    return keys


def attacker_jwk(key: SigningKey | bytes) -> dict[str, Any]:
    if isinstance(key, bytes):
        return {"kty": "oct", "k": b64(key), "alg": "HS256", "kid": "attacker"}
    return key.public_jwk()


def attacker_kid(key: SigningKey | bytes) -> str:
    return "attacker" if isinstance(key, bytes) else key.kid


def alg_of(key: SigningKey | bytes) -> str:
    return "HS256" if isinstance(key, bytes) else key.alg


# -- the control: the forger is sound, and the guard is on every route -------------------


async def test_forged_control_token_is_accepted(target: Target) -> None:
    token = target.forge()
    response = await target.api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert (await target.verifier.verify(token)).sub == target.user_id


async def test_every_protected_route_requires_a_token(es256: Target) -> None:
    documented = {
        ("GET", "/users/me"), ("GET", "/auth/check"), ("GET", "/auth/sessions"),
        ("POST", "/auth/logout"), ("POST", "/auth/logout-all"), ("POST", "/auth/password"),
        ("DELETE", "/auth/sessions/1"), ("POST", "/posts"), ("PATCH", "/posts/1"),
        ("DELETE", "/posts/1"), ("GET", "/admin/users"), ("PATCH", "/admin/users/1"),
        ("DELETE", "/admin/users/1"), ("POST", "/admin/keys/rotate"),
    }
    # Discovery found at least the routes API.md protects (and nothing public).
    assert documented <= set(es256.routes)
    assert not PUBLIC & set(es256.routes)
    for method, path in es256.routes:
        response = await es256.api.client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "invalid_token"
        # RFC 6750 section 3.1: no credentials, so a challenge without an error code.
        assert response.headers["www-authenticate"] == 'Bearer realm="jwtauth"'


# -- alg ---------------------------------------------------------------------------------


@pytest.mark.parametrize("none", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_refused(target: Target, none: str) -> None:
    # CVE-2015-9235 and its kin: an unsecured JWS must never pass, in any spelling, with
    # an empty signature or with a real one left in place.
    header = b64(json.dumps(target.header(alg=none)).encode())
    payload = b64(json.dumps(target.claims()).encode())
    real = b64(sign(target.key, f"{header}.{payload}".encode()))
    for token in (f"{header}.{payload}.", f"{header}.{payload}", f"{header}.{payload}.{real}"):
        await refused(target, token)


@pytest.mark.parametrize("form", ["pem", "pem-no-newline", "jwk-json", "jwks-json"])
async def test_algorithm_confusion_hmac_keyed_with_public_key_refused(
    asymmetric_target: Target, form: str
) -> None:
    # CVE-2016-10555 / CVE-2022-29217: HS256 with our (public!) key as the HMAC secret.
    target = asymmetric_target
    pem = target.key.jwk.as_pem(private=False)
    public = json.dumps(target.key.public_jwk()).encode()
    secret = {
        "pem": pem, "pem-no-newline": pem.strip(), "jwk-json": public,
        "jwks-json": json.dumps(target.jwks).encode(),
    }[form]
    await refused(target, target.forge(key=secret, alg="HS256"))
    await refused(target, target.forge(key=secret, alg="HS256", kid=None))


# -- keys and key locations carried in the header ----------------------------------------


async def test_embedded_jwk_is_never_used(
    target: Target, attacker: dict[str, SigningKey | bytes]
) -> None:
    # CVE-2018-0114 (node-jose): a key in the header signs its own token.
    for key in attacker.values():
        for kid in (target.key.kid, attacker_kid(key), None):
            await refused(target, target.forge(
                key=key, alg=alg_of(key), kid=kid, jwk=attacker_jwk(key)))


async def test_jku_and_x5u_are_never_fetched(
    target: Target, attacker: dict[str, SigningKey | bytes], key_server: KeyServer
) -> None:
    # The URL serves the attacker's keys: fetching it would make these tokens verify.
    key_server.jwks = {"keys": [attacker_jwk(key) for key in attacker.values()]}
    evil = f"{key_server.url}/evil-{target.alg}"
    tokens = [
        target.forge(key=key, alg=alg_of(key), kid=kid, **{name: f"{evil}/{name}"})
        for key in attacker.values()
        for kid in (target.key.kid, attacker_kid(key))
        for name in ("jku", "x5u")
    ]
    for token in tokens:
        await refused(target, token)
    if target.alg != "HS256":
        # The JWKS-URL Verifier fetches its own configured URL, never a token's.
        key_server.documents["/good/jwks.json"] = target.jwks
        remote = Verifier.from_jwks_url(f"{key_server.url}/good/jwks.json", issuer=ISSUER,
                                        audience=AUDIENCE, clock=target.api.clock)
        try:
            assert (await remote.verify(target.forge())).sub == target.user_id
            for token in tokens:
                await refused_by_verifier(remote, token)
            assert key_server.hits["/good/jwks.json"] >= 1  # the counter does count
        finally:
            await remote.aclose()
    assert not [path for path in key_server.hits if path.startswith(f"/evil-{target.alg}")]


def self_signed_certificate(key: SigningKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwtauth.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.jwk.private_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key.jwk.private_key, None if key.alg == "EdDSA" else hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


async def test_x5c_certificate_is_never_used(
    target: Target, attacker: dict[str, SigningKey | bytes]
) -> None:
    for alg in ("ES256", "RS256", "EdDSA"):
        key = attacker[alg]
        assert isinstance(key, SigningKey)
        chain = [self_signed_certificate(key)]
        for kid in (target.key.kid, key.kid, None):
            await refused(target, target.forge(key=key, alg=alg, kid=kid, x5c=chain))


# -- kid -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    [
        "../../etc/passwd", "../../../../dev/null", "/dev/null", "' OR 1=1 --",
        "x'; DROP TABLE signing_keys; --", "", "unknown-kid", "k" * 3000, "k" * 10_000,
        42, 0, True, [], ["KID"], {"kid": "KID"}, "KID ", " KID", "KID\u0000", "kid-of-KID",
    ],
    ids=lambda kid: repr(kid)[:24],
)
async def test_kid_tricks_refused(target: Target, kid: Any) -> None:
    # Signed with our real key: only the kid is wrong, so only the kid lookup can refuse.
    # "KID" stands for our real kid, to try it wrapped in other types and padding.
    ours = target.key.kid
    if isinstance(kid, str):
        kid = kid.replace("KID", ours)
    elif isinstance(kid, list):
        kid = [ours if k == "KID" else k for k in kid]
    elif isinstance(kid, dict):
        kid = {"kid": ours}
    await refused(target, target.forge(kid=kid))


# -- typ: an access token and nothing else -----------------------------------------------


@pytest.mark.parametrize(
    "typ", [None, "JWT", "jwt", "application/jwt", "at+jwt ", "id_token", "JOSE", ["at+jwt"], 1]
)
async def test_token_of_another_type_refused(target: Target, typ: Any) -> None:
    # RFC 8725 section 3.11 / RFC 9068 section 4: an ID token or any JWT of ours that is
    # not typ at+jwt must not be taken as an access token (None: no typ at all).
    await refused(target, target.forge(typ=typ))


async def test_refresh_token_as_bearer_refused(target: Target) -> None:
    await refused(target, target.user.refresh_token)


@pytest.mark.parametrize(
    "members",
    [
        '"alg":"none","alg":"ALG","kid":"KID","typ":"at+jwt"',
        '"alg":"ALG","kid":"KID","typ":"JWT","typ":"at+jwt"',
        '"alg":"ALG","kid":"unknown","kid":"KID","typ":"at+jwt"',
        '"alg":"ALG","kid":"KID","typ":"at+jwt","jku":"x","jku":"y"',
    ],
    ids=["alg", "typ", "kid", "jku"],
)
async def test_duplicate_header_names_refused(target: Target, members: str) -> None:
    # Parsers differ on which duplicate wins (first, last, error): refuse the ambiguity,
    # as for claims (RFC 7515 section 4: names MUST be unique, or the JWS is rejected).
    header = "{" + members.replace("ALG", target.key.alg).replace("KID", target.key.kid) + "}"
    payload = b64(json.dumps(target.claims()).encode())
    await refused(target, signed(target.key, b64(header.encode()), payload))
