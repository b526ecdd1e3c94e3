"""Verification keys (jwtauth.keys): the public JWK a key publishes, the ``Keyring`` that
holds a process's keys, and how a JWKS's entries become keys (``load_jwks``). Key
generation and sealing are the server's: tests/test_keys.py."""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets

import pytest

from jwtauth import ConfigError
from jwtauth.keys import (
    Keyring,
    KeyState,
    SigningKey,
    key_from_secret,
    load_jwks,
    load_public_jwk,
)

from .kit import ASYMMETRIC, key_for

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: key_for(alg) for alg in ASYMMETRIC}


@pytest.mark.parametrize(
    ("alg", "kty", "crv"),
    [("ES256", "EC", "P-256"), ("RS256", "RSA", None), ("EdDSA", "OKP", "Ed25519")],
)
def test_public_jwk_has_public_members_only(
    keys: dict[str, SigningKey], alg: str, kty: str, crv: str | None
) -> None:
    key = keys[alg]
    jwk = key.public_jwk()
    assert not PRIVATE_MEMBERS & set(jwk)
    assert (jwk["kid"], jwk["alg"], jwk["use"], jwk["kty"]) == (key.kid, alg, "sig", kty)
    assert jwk.get("crv") == crv
    if kty == "RSA":
        assert len(base64.urlsafe_b64decode(jwk["n"] + "==")) * 8 >= 2048


def test_hs256_key_is_never_published() -> None:
    secret = secrets.token_bytes(32)
    key = key_from_secret(secret)
    with pytest.raises(ValueError):
        key.public_jwk()
    ring = Keyring([key])
    assert ring.jwks == {"keys": []}
    assert ring.get(key.kid) is key
    assert base64.urlsafe_b64encode(secret).decode().rstrip("=") not in key.kid


# -- the keyring -----------------------------------------------------------------------


def published_kids(ring: Keyring) -> set[str]:
    return {entry["kid"] for entry in ring.jwks["keys"]}


def test_keyring_jwks_etag_and_version_follow_key_changes(keys: dict[str, SigningKey]) -> None:
    old, new = keys["ES256"], keys["EdDSA"]
    ring = Keyring([old])
    first_version, first_etag = ring.version, ring.etag
    assert published_kids(ring) == {old.kid} and ring.signing_key is old

    ring.replace([dataclasses.replace(old, state=KeyState.RETIRING), new])
    assert ring.version == first_version + 1
    assert ring.etag != first_etag
    assert published_kids(ring) == {old.kid, new.kid}
    assert ring.signing_key.kid == new.kid
    both_etag = ring.etag

    ring.replace([dataclasses.replace(old, state=KeyState.RETIRED), new])
    assert ring.version == first_version + 2
    assert published_kids(ring) == {new.kid}
    assert ring.get(old.kid) is None
    assert ring.etag not in (first_etag, both_etag)


def test_keyring_etag_depends_on_content_only(keys: dict[str, SigningKey]) -> None:
    ring = Keyring([keys["ES256"]])
    etag, version = ring.etag, ring.version
    ring.replace([keys["ES256"]])
    assert ring.etag == etag and ring.version == version + 1
    assert Keyring([keys["ES256"]]).etag == etag


def test_next_key_is_published_but_does_not_sign(keys: dict[str, SigningKey]) -> None:
    upcoming = dataclasses.replace(keys["RS256"], state=KeyState.NEXT)
    ring = Keyring([keys["ES256"], upcoming])
    assert published_kids(ring) == {keys["ES256"].kid, upcoming.kid}
    assert ring.signing_key.kid == keys["ES256"].kid


def test_keyring_without_current_key_cannot_sign(keys: dict[str, SigningKey]) -> None:
    ring = Keyring([dataclasses.replace(keys["ES256"], state=KeyState.RETIRING)])
    with pytest.raises(ConfigError):
        _ = ring.signing_key


# -- a JWKS's entries ------------------------------------------------------------------


def test_load_jwks_keeps_the_good_keys_and_skips_each_bad_entry_with_a_warning(
    keys: dict[str, SigningKey], caplog: pytest.LogCaptureFixture
) -> None:
    good = [keys[alg].public_jwk() for alg in ASYMMETRIC]
    bad = [
        {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "no-x"},  # KeyParameterError
        {**good[0], "kid": "off-curve", "y": good[0]["x"]},  # ValueError from cryptography
        {**good[1], "kid": "short", "n": "AQAB"},  # RSA below 2048 bits
        {**good[2], "kid": "x-not-a-string", "x": 7},
        {"kty": "oct", "alg": "HS256", "kid": "secret", "k": "c2VjcmV0"},
        {**good[0], "kid": None}, 42, [],
    ]
    with caplog.at_level(logging.WARNING, logger="jwtauth.jwks"):
        loaded = load_jwks([*bad, *good])
    assert [key.kid for key, _ in loaded] == [entry["kid"] for entry in good]
    assert [entry for _, entry in loaded] == good
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == len(bad)


def test_load_jwks_drops_a_kid_that_appears_twice(keys: dict[str, SigningKey]) -> None:
    es, ed = keys["ES256"].public_jwk(), keys["EdDSA"].public_jwk()
    twin = {**keys["RS256"].public_jwk(), "kid": es["kid"]}
    assert [key.kid for key, _ in load_jwks([es, twin, ed])] == [ed["kid"]]
    with pytest.raises(ValueError, match="no usable key"):
        load_jwks([es, twin])


def test_load_jwks_leaves_out_keys_outside_the_allowlist(keys: dict[str, SigningKey]) -> None:
    entries = [keys[alg].public_jwk() for alg in ASYMMETRIC]
    kept = load_jwks(entries, algorithms=frozenset({"EdDSA"}))
    assert [key.alg for key, _ in kept] == ["EdDSA"]
    with pytest.raises(ValueError, match="no usable key"):
        load_jwks(entries[:1], algorithms=frozenset({"EdDSA"}))


def test_a_short_rsa_key_is_refused_before_joserfc_warns_about_it(
    keys: dict[str, SigningKey],
) -> None:
    # Found by test_properties: joserfc's SecurityWarning on a 256-bit modulus was an
    # exception under -W error, escaping the JWKS reader. Now it is one skipped entry.
    short = {**keys["RS256"].public_jwk(), "kid": "short",
             "n": "qgBPzpIod0ksZTgsn5T2s7S72ht6ALFzlH8QuONdMps"}
    with pytest.raises(ValueError, match="2048"):
        load_public_jwk(short)
    kept = load_jwks([short, keys["ES256"].public_jwk()])
    assert [key.kid for key, _ in kept] == [keys["ES256"].kid]
