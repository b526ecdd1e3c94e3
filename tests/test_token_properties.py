"""Properties of the token parser and verifier (hypothesis): whatever comes in, the answer
is ``Claims`` or ``InvalidToken``, never another exception (a 500 at the server); a valid
token changed in any way never verifies; every token we issue verifies to what we put in.

Example counts are bounded (``PROFILE``) so the suite stays fast and deterministic enough
for CI; hypothesis keeps any failure it finds in .hypothesis/ and replays it first.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.bearer import parse_authorization
from jwtauth.keys import Keyring, SigningKey, key_from_secret
from jwtauth.server.keys import generate_key
from jwtauth.server.tokens import TokenIssuer
from jwtauth.tokens import ClaimsPolicy, verify_access_token

from attack_kit import sign  # signed by hand, not by the code under test
from conftest import AppFactory, Clock

ISS = "https://jwtauth.test"
AUD = "jwtauth"
ALGS = ["ES256", "RS256", "EdDSA", "HS256"]
PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# The two properties that draw nested JSON spend their time generating it: fewer examples.
NESTED = settings(PROFILE, max_examples=150)
B64URL = string.ascii_letters + string.digits + "-_"

_KEYS: dict[str, SigningKey] = {}


def key_for(alg: str) -> SigningKey:
    if alg not in _KEYS:  # made on first use, not at import
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


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused_everywhere(key: SigningKey, clock: Clock, token: Any) -> None:
    """The one outcome allowed for a bad token: exactly ``InvalidToken``, both ways in."""
    with pytest.raises(InvalidToken) as caught:
        verify_access_token(token, Keyring([key]), ClaimsPolicy(ISS, AUD), clock())
    assert type(caught.value) is InvalidToken
    with pytest.raises(InvalidToken) as caught:
        await verifier_for(key, clock).verify(token)
    assert type(caught.value) is InvalidToken


# -- strategies ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
segments = st.text(alphabet=B64URL + "=+/. \n\x00é", max_size=120)
token_shaped = st.lists(segments, min_size=1, max_size=6).map(".".join)
HEADER_NAMES = ["alg", "kid", "typ", "crit", "b64", "jku", "jwk", "x5u", "x5c", "cty", "zip"]
CLAIM_NAMES = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "roles"]


@st.composite
def structured_tokens(draw: st.DrawFn, key: SigningKey) -> str:
    """Three base64url segments of JSON: header members mixing our real alg and kid with
    anything, any payload, any signature bytes. These reach the header checks."""
    header = draw(st.dictionaries(
        st.sampled_from(HEADER_NAMES),
        st.sampled_from([key.alg, key.kid, "at+jwt", "none", "HS256"]) | json_values,
        max_size=6,
    ))
    payload = draw(st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=10))
    signature = draw(st.binary(max_size=300))
    return ".".join(b64(json.dumps(part).encode()) for part in (header, payload)) + "." + b64(
        signature)


# -- anything in: InvalidToken out -----------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
@PROFILE
@given(token=st.text(max_size=400) | token_shaped)
async def test_any_text_is_refused_with_invalid_token(alg: str, token: str) -> None:
    await refused_everywhere(key_for(alg), Clock(), token)


@pytest.mark.parametrize("alg", ALGS)
@PROFILE
@given(token=st.binary(max_size=400) | st.none() | st.integers() | st.lists(st.text(max_size=5)))
async def test_bytes_or_non_text_is_refused_with_invalid_token(alg: str, token: Any) -> None:
    await refused_everywhere(key_for(alg), Clock(), token)


@pytest.mark.parametrize("alg", ALGS)
@NESTED
@given(data=st.data())
async def test_structured_garbage_is_refused_with_invalid_token(alg: str, data: Any) -> None:
    key = key_for(alg)
    await refused_everywhere(key, Clock(), data.draw(structured_tokens(key)))


@st.composite
def claim_sets(draw: st.DrawFn, now: int) -> dict[str, Any]:
    """Each claim good, absent or anything (NaN and Infinity too, which json.dumps writes
    though they are not JSON), so every claims check is reached with every kind of value."""
    good = {"iss": ISS, "sub": "u-1", "aud": AUD, "iat": now, "nbf": now, "exp": now + 900,
            "jti": "j-1", "sid": "s-1", "roles": ["user"], "preferred_username": "alice"}
    claims: dict[str, Any] = {}
    for name, value in good.items():
        choice = draw(st.sampled_from(["good", "good", "other", "absent"]))
        if choice == "good":
            claims[name] = value
        elif choice == "other":
            # Offsets from now (not bounds around it): replays must draw the same way.
            claims[name] = draw(json_values | st.integers(-10**6, 10**6).map(now.__add__)
                                | st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 10**400]))
    claims.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    return claims


@pytest.mark.parametrize("alg", ALGS)
@NESTED
@given(header=st.dictionaries(st.sampled_from(HEADER_NAMES), json_values, max_size=4),
       data=st.data())
async def test_any_signed_claims_give_claims_or_invalid_token(
    alg: str, header: dict[str, Any], data: Any
) -> None:
    # Signed with the real key, so the claims step sees whatever the payload holds.
    key, clock = key_for(alg), Clock()
    claims = data.draw(claim_sets(int(clock())))
    head = b64(json.dumps({**header, "alg": key.alg, "kid": key.kid, "typ": "at+jwt"}).encode())
    body = b64(json.dumps(claims).encode())
    token = f"{head}.{body}.{b64(sign(key, f'{head}.{body}'.encode()))}"
    try:
        verified = await verifier_for(key, clock).verify(token)
    except InvalidToken as exc:
        assert type(exc) is InvalidToken
        return
    # Whatever got through keeps every promise of the claims step.
    assert isinstance(verified, Claims) and verified.iss == ISS
    assert claims["iss"] == ISS and (claims["aud"] == AUD or AUD in claims["aud"])
    assert clock() <= verified.exp + 30
    assert all(isinstance(v, str) and v for v in (verified.sub, verified.sid, verified.jti))
    assert all(isinstance(role, str) for role in verified.roles)


@PROFILE
@given(values=st.lists(st.text(max_size=60), max_size=3))
def test_any_authorization_header_gives_a_token_or_an_invalid_token_error(
    values: list[str],
) -> None:
    try:
        token = parse_authorization(values)
    except InvalidToken:  # MissingToken included
        return
    assert token and " " not in token and len(values) == 1


# -- a good token changed in any way never verifies -----------------------------------


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    head, payload, signature = token.split(".")
    kind = draw(st.sampled_from(["flip", "drop", "insert", "swap", "repeat", "cut"]))
    if kind == "flip":
        at = draw(st.integers(0, len(token) - 1))
        char = draw(st.sampled_from(B64URL + ".=+/ ").filter(lambda c: c != token[at]))
        return token[:at] + char + token[at + 1:]
    if kind == "drop":
        start = draw(st.integers(0, len(token) - 1))
        end = draw(st.integers(start + 1, min(len(token), start + 12)))
        return token[:start] + token[end:]
    if kind == "insert":
        at = draw(st.integers(0, len(token)))
        inserted = draw(st.text(alphabet=B64URL + ".=", min_size=1, max_size=8))
        return token[:at] + inserted + token[at:]
    if kind == "swap":
        parts = [head, payload, signature]
        order = draw(st.permutations([0, 1, 2]).filter(lambda p: list(p) != [0, 1, 2]))
        return ".".join(parts[i] for i in order)
    if kind == "repeat":
        which = draw(st.sampled_from([head, payload, signature]))
        return draw(st.sampled_from([f"{which}.{token}", f"{token}.{which}"]))
    return token[: draw(st.integers(0, len(token) - 1))]


@pytest.mark.parametrize("alg", ALGS)
@PROFILE
@given(data=st.data())
async def test_mutated_token_never_verifies(alg: str, data: Any) -> None:
    key, clock = key_for(alg), Clock()
    token = issue(key, clock)
    await verifier_for(key, clock).verify(token)  # the original is good
    mutated = data.draw(mutations(token))
    if mutated != token:
        await refused_everywhere(key, clock, mutated)


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
