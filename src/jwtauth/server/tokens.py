"""Signing access tokens (RFC 9068 JWT profile) with the keyring's current key."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64encode

from ..keys import Keyring, SigningKey
from ..tokens import ClaimsPolicy

_ALG_MODELS = {name: JWSRegistry.algorithms[name] for name in ("HS256", "RS256", "ES256", "EdDSA")}


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
        # orjson writes what compact.parse_payload's fast path reads back byte for byte.
        signing_input = b".".join(
            urlsafe_b64encode(orjson.dumps(part)) for part in (header, claims)
        )
        signature = _ALG_MODELS[key.alg].sign(signing_input, key.jwk)
        return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")
