"""Issue and verify access tokens (RFC 9068 JWT profile, RFC 8725 best practices).

``verify_access_token`` is the one function that decides whether an access token is
good. It checks, in this order and before trusting anything in the token: size, shape,
header (kid known, alg equal to the key's own algorithm, typ at+jwt, no crit/b64), the
signature with the key's algorithm, then the claims under a ``ClaimsPolicy``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from .claims import Claims
from .errors import InvalidToken
from .keys import Keyring, SigningKey

MAX_TOKEN_BYTES = 8192
_ALLOWED_TYP = frozenset({"at+jwt", "application/at+jwt"})
_REGISTRY = JWSRegistry(algorithms=["HS256", "RS256", "ES256", "EdDSA"])
_ALG_MODELS = {name: JWSRegistry.algorithms[name] for name in ("HS256", "RS256", "ES256", "EdDSA")}


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    issuer: str
    audience: str
    leeway: int = 30


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may disagree on which duplicate wins; refuse the ambiguity outright.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidToken("duplicate member name")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259 section 6); Python would read them, and an
    # "exp": Infinity would never expire (or crash the int conversion).
    raise InvalidToken(f"non-JSON constant {name}")


def _parse_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            data, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's limit, e.g. [[[[...]]]].
        raise InvalidToken(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"{what} is not an object")
    return value


def _parse_claims(payload: bytes) -> dict[str, Any]:
    return _parse_object(payload, "payload")


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} missing or not a number")
    return int(value)


def _str_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"{name} missing or not a string")
    return value


def check_claims(claims: dict[str, Any], policy: ClaimsPolicy, now: float) -> Claims:
    """The claims step, after the signature has been verified."""
    exp = _int_claim(claims, "exp")
    iat = _int_claim(claims, "iat")
    if now > exp + policy.leeway:
        raise InvalidToken("expired")
    if "nbf" in claims and now + policy.leeway < _int_claim(claims, "nbf"):
        raise InvalidToken("not yet valid")
    if now + policy.leeway < iat:
        raise InvalidToken("issued in the future")
    if claims.get("iss") != policy.issuer:
        raise InvalidToken("wrong issuer")
    aud = claims.get("aud")
    if not (aud == policy.audience or (isinstance(aud, list) and policy.audience in aud)):
        raise InvalidToken("wrong audience")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("roles is not a list of strings")
    username = claims.get("preferred_username")
    return Claims(
        sub=_str_claim(claims, "sub"),
        sid=_str_claim(claims, "sid"),
        jti=_str_claim(claims, "jti"),
        roles=tuple(roles),
        iss=policy.issuer,
        exp=exp,
        iat=iat,
        username=username if isinstance(username, str) else None,
        raw=claims,
    )


def verify_access_token(
    token: str, keyring: Keyring, policy: ClaimsPolicy, now: float
) -> Claims:
    """Verify signature and claims; raise ``InvalidToken`` for any fault at all."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token too large")
    try:
        compact = jws.extract_compact(token.encode("ascii"), registry=_REGISTRY)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidToken("malformed") from exc
    # joserfc's header parser lets a repeated name win silently; parse it again with the
    # duplicate check the claims get, so no two parsers can read one header differently.
    header = _parse_object(urlsafe_b64decode(compact.segments["header"]), "header")
    if "crit" in header or "b64" in header:
        raise InvalidToken("critical header parameters are not supported")
    kid = header.get("kid")
    key = keyring.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken("unknown kid")
    if header.get("alg") != key.alg:
        raise InvalidToken("alg does not match the key")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ALLOWED_TYP:
        raise InvalidToken("typ is not at+jwt")
    try:
        good = jws.verify_compact(compact, _ALG_MODELS[key.alg], key.jwk)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken("bad signature") from exc
    if not good:
        raise InvalidToken("bad signature")
    return check_claims(_parse_claims(compact.payload), policy, now)


class TokenIssuer:
    """Signs access tokens with the keyring's current key."""

    def __init__(
        self, keyring: Keyring, policy: ClaimsPolicy, ttl: int, clock: Callable[[], float]
    ) -> None:
        self._keyring = keyring
        self.policy = policy
        self.ttl = ttl
        self._clock = clock

    def issue(self, *, sub: str, sid: str, roles: list[str], username: str) -> str:
        key: SigningKey = self._keyring.signing_key
        now = int(self._clock())
        claims = {
            "iss": self.policy.issuer,
            "sub": sub,
            "aud": self.policy.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            "sid": sid,
            "roles": list(roles),
            "preferred_username": username,
        }
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        # Framed here and signed by the key's own algorithm model: joserfc's registry
        # would look the algorithm up by name and warn on "EdDSA", which API.md fixes.
        signing_input = b".".join(
            urlsafe_b64encode(json.dumps(part, separators=(",", ":")).encode())
            for part in (header, claims)
        )
        signature = _ALG_MODELS[key.alg].sign(signing_input, key.jwk)
        return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")
