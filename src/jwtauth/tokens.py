"""Verify access tokens (RFC 9068 JWT profile, RFC 8725 best practices).

``verify_access_token`` is the one function that decides whether an access token is
good. It checks, in this order and before trusting anything in the token: size, shape,
header (kid known, alg equal to the key's own algorithm and in the allowlist if one is
set, typ at+jwt, no crit/b64), the signature with the key's algorithm, then the claims
under a ``ClaimsPolicy``. ``sid`` may be absent (an OAuth client's own token); ``scope``
and ``client_id``, when present, must be strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .claims import Claims
from .compact import b64url_decode, parse_payload, read_header
from .errors import InvalidToken
from .keys import Keyring

MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What the claims of a good token must say. ``audience`` is one audience or several:
    a token passes when its ``aud`` (a string or a list) names any of them."""

    issuer: str
    audience: str | Sequence[str]
    leeway: int = 30
    audiences: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wanted = (self.audience,) if isinstance(self.audience, str) else tuple(self.audience)
        if not wanted or not all(isinstance(a, str) and a for a in wanted):
            raise ValueError("audience is a non-empty string or a list of them")
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("issuer is a non-empty string")
        object.__setattr__(self, "audiences", wanted)
        if not isinstance(self.audience, str):
            object.__setattr__(self, "audience", wanted)  # a list would make it unhashable


def _time_value(value: Any, name: str) -> int:
    if type(value) is float and math.isfinite(value):  # 1e999 reads as infinity
        return int(value)
    raise InvalidToken(f"{name} missing or not a number")


def _bad_string(name: str) -> InvalidToken:
    return InvalidToken(f"{name} missing or not a string")


# Claims is a NamedTuple; tuple.__new__ builds it without the generated keyword wrapper.
_new_tuple = tuple.__new__


def check_claims(claims: dict[str, Any], policy: ClaimsPolicy, now: float) -> Claims:
    """The claims step, after the signature has been verified.

    Written flat, with exact ``type(...) is`` tests (True is an int to Python, not to
    JSON): it runs for every fresh token, and each call here costs a visible share.
    """
    get = claims.get
    exp, iat, leeway = get("exp"), get("iat"), policy.leeway
    if type(exp) is not int:
        exp = _time_value(exp, "exp")
    if type(iat) is not int:
        iat = _time_value(iat, "iat")
    if now > exp + leeway:
        raise InvalidToken("expired")
    if "nbf" in claims:
        nbf = get("nbf")
        if now + leeway < (nbf if type(nbf) is int else _time_value(nbf, "nbf")):
            raise InvalidToken("not yet valid")
    if now + leeway < iat:
        raise InvalidToken("issued in the future")
    if get("iss") != policy.issuer:
        raise InvalidToken("wrong issuer")
    aud, audiences = get("aud"), policy.audiences
    if type(aud) is str:
        if aud not in audiences:
            raise InvalidToken("wrong audience")
    elif type(aud) is not list or not any(wanted in aud for wanted in audiences):
        raise InvalidToken("wrong audience")
    roles = get("roles", [])
    try:
        if type(roles) is not list:
            raise TypeError
        "".join(roles)  # a TypeError unless every role is a string: the loop runs in C
    except TypeError:
        raise InvalidToken("roles is not a list of strings") from None
    sub, sid, jti = get("sub"), get("sid"), get("jti")
    if type(sub) is not str or not sub:
        raise _bad_string("sub")
    # No sid: a token of no sign-in session (an OAuth client's own). One that has a sid
    # must have a usable one, or a session revocation could never match it.
    if sid is None:
        if "sid" in claims:
            raise _bad_string("sid")
    elif type(sid) is not str or not sid:
        raise _bad_string("sid")
    if type(jti) is not str or not jti:
        raise _bad_string("jti")
    if "scope" in claims and type(get("scope")) is not str:
        raise _bad_string("scope")  # RFC 9068 section 2.2.3: one space-separated string
    if "client_id" in claims and type(get("client_id")) is not str:
        raise _bad_string("client_id")
    username = get("preferred_username")
    return _new_tuple(Claims, (
        sub, sid, jti, tuple(roles), policy.issuer, exp, iat,
        username if type(username) is str else None, MappingProxyType(claims),
    ))


def verify_access_token(
    token: str, keyring: Keyring, policy: ClaimsPolicy, now: float,
    algorithms: frozenset[str] | None = None,
) -> Claims:
    """Verify signature and claims; raise ``InvalidToken`` for any fault at all.

    ``algorithms``, when given, is an allowlist: a key of another algorithm verifies
    nothing, even when the keyring holds it.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token too large")
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise InvalidToken("malformed") from exc
    # Split at the first and the last dot: a missing dot leaves an empty header, and an
    # extra one lands in the payload, where base64url decoding refuses it.
    signing_input, dot, signature = data.rpartition(b".")
    header, dot2, payload = signing_input.partition(b".")
    if not (dot and dot2):
        raise InvalidToken("malformed")
    kid, alg = read_header(header)
    key = keyring.get(kid)
    if key is None:
        raise InvalidToken("unknown kid")
    if alg != key.alg:
        raise InvalidToken("alg does not match the key")
    if algorithms is not None and alg not in algorithms:
        raise InvalidToken("algorithm not allowed")
    if not key.verify_signature(signing_input, b64url_decode(signature)):
        raise InvalidToken("bad signature")
    return check_claims(parse_payload(b64url_decode(payload)), policy, now)
