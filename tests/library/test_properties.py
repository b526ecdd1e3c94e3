"""Properties of the token parser, the verifier and the JWKS reader (hypothesis): whatever
comes in, the answer is ``Claims`` or ``InvalidToken``, never another exception (a 500 at
the protected route); a valid token changed in any way never verifies; whatever a JWKS
entry holds, it is a key or a skipped entry, never an exception out of the verifier.

Example counts are bounded (``PROFILE``) so the suite stays fast and deterministic enough
for CI; hypothesis keeps any failure it finds in .hypothesis/ and replays it first.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtauth import Claims, InvalidToken, Verifier
from jwtauth.bearer import parse_authorization
from jwtauth.jwks import JWKSFetchError, parse_jwks
from jwtauth.keys import Keyring, SigningKey
from jwtauth.tokens import ClaimsPolicy, verify_access_token

from .kit import ALGS, AUDIENCE, ISSUER, Clock, b64, key_for, public_entry, sign, token

PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# The properties that draw nested JSON spend their time generating it: fewer examples.
NESTED = settings(PROFILE, max_examples=150)
B64URL = string.ascii_letters + string.digits + "-_"


def verifier_for(key: SigningKey, clock: Clock) -> Verifier:
    return Verifier.from_keys([public_entry(key)], issuer=ISSUER, audience=AUDIENCE, clock=clock)


async def refused_everywhere(key: SigningKey, clock: Clock, token: Any) -> None:
    """The one outcome allowed for a bad token: exactly ``InvalidToken``, both ways in."""
    with pytest.raises(InvalidToken) as caught:
        verify_access_token(token, Keyring([key]), ClaimsPolicy(ISSUER, AUDIENCE), clock())
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
CLAIM_NAMES = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "roles", "scope",
               "client_id"]


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
    good = {"iss": ISSUER, "sub": "u-1", "aud": AUDIENCE, "iat": now, "nbf": now,
            "exp": now + 900, "jti": "j-1", "sid": "s-1", "roles": ["user"],
            "preferred_username": "alice", "scope": "read write", "client_id": "c-1"}
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
    assert isinstance(verified, Claims) and verified.iss == ISSUER
    assert claims["iss"] == ISSUER and (claims["aud"] == AUDIENCE or AUDIENCE in claims["aud"])
    assert clock() <= verified.exp + 30
    assert all(isinstance(v, str) and v for v in (verified.sub, verified.jti))
    assert verified.sid is None or (isinstance(verified.sid, str) and verified.sid)
    assert ("sid" in claims) is (verified.sid is not None)
    assert all(isinstance(role, str) for role in verified.roles)
    assert all(isinstance(scope, str) and scope for scope in verified.scope)
    assert verified.client_id is None or isinstance(verified.client_id, str)


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
def mutations(draw: st.DrawFn, good: str) -> str:
    head, payload, signature = good.split(".")
    kind = draw(st.sampled_from(["flip", "drop", "insert", "swap", "repeat", "cut"]))
    if kind == "flip":
        at = draw(st.integers(0, len(good) - 1))
        char = draw(st.sampled_from(B64URL + ".=+/ ").filter(lambda c: c != good[at]))
        return good[:at] + char + good[at + 1:]
    if kind == "drop":
        start = draw(st.integers(0, len(good) - 1))
        end = draw(st.integers(start + 1, min(len(good), start + 12)))
        return good[:start] + good[end:]
    if kind == "insert":
        at = draw(st.integers(0, len(good)))
        inserted = draw(st.text(alphabet=B64URL + ".=", min_size=1, max_size=8))
        return good[:at] + inserted + good[at:]
    if kind == "swap":
        parts = [head, payload, signature]
        order = draw(st.permutations([0, 1, 2]).filter(lambda p: list(p) != [0, 1, 2]))
        return ".".join(parts[i] for i in order)
    if kind == "repeat":
        which = draw(st.sampled_from([head, payload, signature]))
        return draw(st.sampled_from([f"{which}.{good}", f"{good}.{which}"]))
    return good[: draw(st.integers(0, len(good) - 1))]


@pytest.mark.parametrize("alg", ALGS)
@PROFILE
@given(data=st.data())
async def test_mutated_token_never_verifies(alg: str, data: Any) -> None:
    key, clock = key_for(alg), Clock()
    good = token(key, clock)
    await verifier_for(key, clock).verify(good)  # the original is good
    mutated = data.draw(mutations(good))
    if mutated != good:
        await refused_everywhere(key, clock, mutated)


# -- whatever a JWKS holds: keys or skipped entries, never an exception --------------

KEY_MEMBERS = ["kty", "crv", "alg", "kid", "use", "key_ops", "x", "y", "n", "e", "d", "k"]
_GOOD_ENTRIES = {alg: key_for(alg).public_jwk() for alg in ("ES256", "RS256", "EdDSA")}


@st.composite
def jwks_entries(draw: st.DrawFn) -> Any:
    """A real public JWK with members removed, replaced or added (anything, or another
    key's value of that member), or anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    base = dict(draw(st.sampled_from(list(_GOOD_ENTRIES.values()))))
    others = [entry[name] for entry in _GOOD_ENTRIES.values() for name in entry]
    for name in draw(st.lists(st.sampled_from(KEY_MEMBERS), max_size=4, unique=True)):
        choice = draw(st.sampled_from(["drop", "any", "other"]))
        if choice == "drop":
            base.pop(name, None)
        else:
            base[name] = draw(json_values if choice == "any" else st.sampled_from(others))
    return base


@NESTED
@given(entries=st.lists(jwks_entries(), max_size=4))
async def test_any_jwks_entry_is_a_key_or_skipped_and_the_good_key_still_verifies(
    entries: list[Any],
) -> None:
    good, clock = key_for("ES256"), Clock()
    good_entry = dict(_GOOD_ENTRIES["ES256"])
    # Entries sharing the good key's kid drop it (an ambiguous kid): only then is it gone.
    clash = any(isinstance(e, dict) and e.get("kid") == good.kid for e in entries)
    document = {"keys": [*entries, good_entry]}
    try:
        verifier = Verifier.from_jwks(document, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    except ValueError:
        assert clash
        return
    if not clash:
        assert (await verifier.verify(token(good, clock))).sub == "u-1"
    for entry in entries:  # a token naming any entry's kid: Claims or InvalidToken only
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if isinstance(kid, str):
            try:
                await verifier.verify(_with_kid(good, clock, kid))
            except InvalidToken as exc:
                assert type(exc) is InvalidToken
    body = json.dumps(document).encode()
    try:
        keys, _ = parse_jwks(body)
    except JWKSFetchError:
        assert clash
    else:
        assert {k.kid for k in keys} == set(verifier.keyring.kids())


def _with_kid(key: SigningKey, clock: Clock, kid: str) -> str:
    head = b64(json.dumps({"alg": key.alg, "kid": kid, "typ": "at+jwt"}).encode())
    body = b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "jti": "j",
                           "iat": int(clock()), "exp": int(clock()) + 60}).encode())
    return f"{head}.{body}.{b64(sign(key, f'{head}.{body}'.encode()))}"


@PROFILE
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | st.lists(json_values, max_size=3).map(lambda v: json.dumps({"keys": v}).encode()))
def test_any_jwks_body_gives_keys_or_a_fetch_error(body: bytes) -> None:
    try:
        keys, entries = parse_jwks(body)
    except JWKSFetchError:
        return
    assert keys and len(keys) == len(entries)
