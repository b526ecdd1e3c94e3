"""Properties of the server's side of tokens (hypothesis): every token the issuer signs
verifies to what was put in, and the server answers any Authorization header with a 401,
never a 500. The library's own properties are tests/library/test_properties.py.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtauth import Verifier
from jwtauth.keys import Keyring, SigningKey, key_from_secret
from jwtauth.server.keys import generate_key
from jwtauth.server.tokens import TokenIssuer
from jwtauth.tokens import ClaimsPolicy

from conftest import AppFactory, Clock

ISS = "https://jwtauth.test"
AUD = "jwtauth"
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]
PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
B64URL = string.ascii_letters + string.digits + "-_"
segments = st.text(alphabet=B64URL + "=+/. \n\x00é", max_size=120)
token_shaped = st.lists(segments, min_size=1, max_size=6).map(".".join)

_KEYS: dict[str, SigningKey] = {}


def key_for(alg: str) -> SigningKey:
    """A key as the server makes it (generate_key), on first use, not at import."""
    if alg not in _KEYS:
        _KEYS[alg] = (key_from_secret(secrets.token_bytes(32)) if alg == "HS256"
                      else generate_key(alg))  # type: ignore[arg-type]
    return _KEYS[alg]


def verifier_for(key: SigningKey, clock: Clock) -> Verifier:
    entry: SigningKey | dict[str, Any] = key.public_jwk() if key.is_asymmetric else key
    return Verifier.from_keys([entry], issuer=ISS, audience=AUD, clock=clock)


def issue(key: SigningKey, clock: Clock, **claims: Any) -> str:
    issuer = TokenIssuer(Keyring([key]), ClaimsPolicy(ISS, AUD), 900, clock)
    return issuer.issue(**{"sub": "u-1", "sid": "s-1", "roles": ["user"], "username": "alice",
                           **claims})


# -- every issued token verifies -------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
@PROFILE
@given(sub=st.text(min_size=1, max_size=40), sid=st.text(min_size=1, max_size=40),
       roles=st.lists(st.text(max_size=20), max_size=5), username=st.text(max_size=40))
async def test_issued_token_always_verifies(
    alg: str, sub: str, sid: str, roles: list[str], username: str
) -> None:
    key, clock = key_for(alg), Clock()
    token = issue(key, clock, sub=sub, sid=sid, roles=roles, username=username)
    claims = await verifier_for(key, clock).verify(token)
    assert (claims.sub, claims.sid, claims.roles, claims.username) == (
        sub, sid, tuple(roles), username
    )


# -- and the server: any Authorization header is a 401, never a 500 --------------------


@PROFILE
@given(value=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                            exclude_characters="\x7f"), max_size=200)
       | token_shaped.filter(lambda t: "\n" not in t and "\x00" not in t
                             and t.isascii()).map("Bearer ".__add__))
async def test_server_answers_any_authorization_header_with_401(
    make_api: AppFactory, value: str
) -> None:
    api = await _shared_api(make_api)
    for path in ("/users/me", "/auth/sessions"):  # the thin ASGI path, then FastAPI's
        response = await api.client.get(path, headers={"Authorization": value.encode("latin-1")})
        assert response.status_code == 401, (value, response.text)
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith("Bearer ")


_APIS: dict[int, Any] = {}


async def _shared_api(make_api: AppFactory) -> Any:
    # One app per test (make_api is the test's fixture), not one per example.
    if id(make_api) not in _APIS:
        _APIS.clear()
        _APIS[id(make_api)] = await make_api()
    return _APIS[id(make_api)]
