"""The server's ``TokenIssuer`` (RFC 9068 profile) as the library's ``Verifier`` sees its
tokens; and a refresh token is never an access token. What the Verifier refuses is
tests/library/test_checks.py."""

from __future__ import annotations

import json
import secrets

import pytest

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.keys import Keyring, SigningKey, key_from_secret
from jwtauth.server.keys import generate_key
from jwtauth.server.sessions import new_refresh_token
from jwtauth.server.tokens import TokenIssuer
from jwtauth.tokens import ClaimsPolicy

from conftest import Clock
from library.kit import unb64

ISS = "https://jwtauth.test"
AUD = "jwtauth"
TTL = 900
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    made = {alg: generate_key(alg) for alg in ALGS if alg != "HS256"}  # type: ignore[arg-type]
    made["HS256"] = key_from_secret(secrets.token_bytes(32))
    return made


@pytest.fixture(params=ALGS)
def key(request: pytest.FixtureRequest, keys: dict[str, SigningKey]) -> SigningKey:
    return keys[request.param]


def verifier_for(key: SigningKey, clock: Clock) -> Verifier:
    entry = key.public_jwk() if key.is_asymmetric else key
    return Verifier.from_keys([entry], issuer=ISS, audience=AUD, clock=clock)


async def test_issued_token_verifies_to_claims(key: SigningKey) -> None:
    clock = Clock()
    issuer = TokenIssuer(Keyring([key]), ClaimsPolicy(ISS, AUD, 30), TTL, clock)
    token = issuer.issue(sub="u-1", sid="s-1", roles=["user", "editor"], username="alice")
    claims = await verifier_for(key, clock).verify(token)
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.sid, claims.roles) == ("u-1", "s-1", ("user", "editor"))
    assert claims.exp == int(clock()) + TTL
    assert claims.raw["iss"] == ISS and claims.raw["aud"] == AUD
    assert claims.raw["preferred_username"] == "alice" and claims.raw["jti"] == claims.jti
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}


async def test_refresh_token_refused_as_access_token(key: SigningKey) -> None:
    with pytest.raises(InvalidToken):
        await verifier_for(key, Clock()).verify(new_refresh_token())
