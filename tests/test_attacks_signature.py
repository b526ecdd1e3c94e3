"""Attacks on the signature and on the claims, each a named regression test against the
server (every protected route on ES256, a sample on the other algorithms) and the
library's ``Verifier``. See attack_kit.py for the setup."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attack_kit import (
    AUDIENCE,
    ISSUER,
    Target,
    b64,
    refused,
)
from library.kit import unb64

pytestmark = pytest.mark.asyncio(loop_scope="module")

SKEW = 30  # the server's default JWTAUTH_CLOCK_SKEW
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


async def accepted(target: Target, token: str) -> None:
    """The control of a refusal: the same forgery, just inside the limit, is taken."""
    response = await target.api.client.get(
        "/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert (await target.verifier.verify(token)).sub == target.user_id


# -- the signature -----------------------------------------------------------------------


async def test_stripped_signature_refused(target: Target) -> None:
    head, payload, _ = target.forge().split(".")
    await refused(target, f"{head}.{payload}.")
    await refused(target, f"{head}.{payload}")


@pytest.mark.parametrize("cut", [1, 2, 4, 8, "half", "all-but-one"])
async def test_truncated_signature_refused(target: Target, cut: int | str) -> None:
    head, payload, signature = target.forge().split(".")
    keep = {"half": len(signature) // 2, "all-but-one": 1}.get(cut)  # type: ignore[call-overload]
    shorter = signature[:keep] if keep is not None else signature[: -int(cut)]
    await refused(target, f"{head}.{payload}.{shorter}")


async def test_extended_signature_refused(target: Target) -> None:
    head, payload, signature = target.forge().split(".")
    for longer in (signature + "AAAA", signature + signature, "AAAA" + signature):
        await refused(target, f"{head}.{payload}.{longer}")


async def test_signature_of_another_token_refused(target: Target) -> None:
    # Splicing: the real signature of alice's own token under claims she wrote herself.
    real_head, _, real_signature = target.user.access_token.split(".")
    claims = json.loads(unb64(target.user.access_token.split(".")[1]))
    claims["roles"] = ["user", "admin"]
    await refused(target, f"{real_head}.{b64(json.dumps(claims).encode())}.{real_signature}")


async def test_all_zero_signature_refused(target: Target) -> None:
    head, payload, signature = target.forge().split(".")
    await refused(target, f"{head}.{payload}.{b64(bytes(len(unb64(signature))))}")


def raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("r", "s"),
    [
        (0, 0), (0, "s"), ("r", 0), (P256_ORDER, P256_ORDER), (P256_ORDER, "s"),
        ("r", P256_ORDER), (P256_ORDER + 1, 1), (2**256 - 1, 2**256 - 1), (1, 1),
    ],
    ids=lambda v: {0: "0", 1: "1", P256_ORDER: "n", P256_ORDER + 1: "n+1",
                   2**256 - 1: "max"}.get(v, str(v)),
)
@pytest.mark.parametrize("form", ["raw", "der"])
async def test_psychic_ecdsa_signature_refused(
    es256: Target, r: int | str, s: int | str, form: str
) -> None:
    # CVE-2022-21449 (Java's "psychic signatures"): r = s = 0 verified anything; values
    # at or above the curve order n must be refused too. "r"/"s": the genuine value.
    head, payload, signature = es256.forge().split(".")
    genuine = unb64(signature)
    r_value = int.from_bytes(genuine[:32], "big") if r == "r" else int(r)
    s_value = int.from_bytes(genuine[32:], "big") if s == "s" else int(s)
    value = raw(r_value, s_value) if form == "raw" else encode_dss_signature(r_value, s_value)
    await refused(es256, f"{head}.{payload}.{b64(value)}")


async def test_genuine_ecdsa_signature_in_der_form_refused(es256: Target) -> None:
    # RFC 7518 section 3.4: JWS carries r || s; a verifier that also takes DER accepts
    # two encodings of one signature, the door to the psychic-signature bugs above.
    head, payload, signature = es256.forge().split(".")
    genuine = unb64(signature)
    der = encode_dss_signature(int.from_bytes(genuine[:32], "big"),
                               int.from_bytes(genuine[32:], "big"))
    await refused(es256, f"{head}.{payload}.{b64(der)}")


# -- the claims --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        "https://evil.test", ISSUER + "/", "http://jwtauth.test", ISSUER.upper(), "",
        [ISSUER], {"iss": ISSUER}, 1, "MISSING",
    ],
)
async def test_wrong_issuer_refused(target: Target, iss: Any) -> None:
    claims = target.claims(iss=iss)
    if iss == "MISSING":
        del claims["iss"]
    await refused(target, target.forge(claims))


@pytest.mark.parametrize(
    "aud", ["other", ["other"], [], "", AUDIENCE + " ", AUDIENCE.upper(), {"aud": AUDIENCE},
            ["other", [AUDIENCE]], "MISSING"],
)
async def test_wrong_audience_refused(target: Target, aud: Any) -> None:
    claims = target.claims(aud=aud)
    if aud == "MISSING":
        del claims["aud"]
    await refused(target, target.forge(claims))


async def test_expired_beyond_skew_refused(target: Target) -> None:
    now = target.now()
    await refused(target, target.forge(target.claims(iat=now - 900, nbf=now - 900,
                                                     exp=now - SKEW - 1)))
    await accepted(target, target.forge(target.claims(iat=now - 900, nbf=now - 900,
                                                      exp=now - SKEW + 5)))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_not_yet_valid_beyond_skew_refused(target: Target, claim: str) -> None:
    now = target.now()
    await refused(target, target.forge(target.claims(**{claim: now + SKEW + 1})))
    await accepted(target, target.forge(target.claims(**{claim: now + SKEW - 5})))


@pytest.mark.parametrize(
    "exp", ["MISSING", "9999999999", None, True, [9999999999], 1e400, -1e400, float("nan")]
)
async def test_missing_or_malformed_exp_refused(target: Target, exp: Any) -> None:
    # json.dumps writes Infinity and NaN, which are not JSON: a lax reader's exp would
    # never pass, or never compare.
    claims = target.claims()
    if exp == "MISSING":
        del claims["exp"]
    else:
        claims["exp"] = exp
    await refused(target, target.forge(json.dumps(claims).encode()))


@pytest.mark.parametrize(
    "duplicate",
    [
        '"roles": ["admin"]', '"sub": "someone-else"', '"exp": 99999999999',
        '"aud": "jwtauth"', '"iss": "https://jwtauth.test"',
    ],
)
async def test_duplicate_claim_names_refused(target: Target, duplicate: str) -> None:
    # A lax parser takes the last of two "roles" (or "exp") and grants what the first
    # denied; other parsers take the first. One token must not mean two things.
    good = json.dumps(target.claims(roles=["user"]))
    await refused(target, target.forge((good[:-1] + ", " + duplicate + "}").encode()))
