"""Signing the provider's JWTs (access, ID and logout tokens) and reading back its own ID
tokens (``id_token_hint``), with joserfc's algorithm models and the library's keys.

Framed here, as server/tokens.py does for first-party access tokens: joserfc's
registry looks algorithms up by name and warns on "EdDSA", which API.md fixes; its
algorithm objects do the signing. Verification is the key's own prebuilt check
(``SigningKey.verify_signature``), under the key's algorithm, never the token's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64encode

from ...compact import b64url_decode, parse_payload
from ...errors import InvalidToken
from ...keys import SigningKey

_ALG_MODELS = {name: JWSRegistry.algorithms[name] for name in ("RS256", "ES256", "EdDSA")}
MAX_JWT_BYTES = 16384


def sign_jwt(key: SigningKey, claims: Mapping[str, Any], *, typ: str | None = None) -> str:
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    signing_input = b".".join(
        urlsafe_b64encode(orjson.dumps(part)) for part in (header, dict(claims))
    )
    signature = _ALG_MODELS[key.alg].sign(signing_input, key.jwk)
    return (signing_input + b"." + urlsafe_b64encode(signature)).decode("ascii")


def read_signed(token: str, key_for: Callable[[str], SigningKey | None]) -> dict[str, Any]:
    """The claims of a JWS this server signed (any typ), signature checked, claims not:
    the caller decides which claims matter (an expired ``id_token_hint`` is still a hint).
    ``InvalidToken`` for anything else."""
    if not isinstance(token, str) or len(token) > MAX_JWT_BYTES:
        raise InvalidToken("too large")
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise InvalidToken("malformed") from exc
    signing_input, dot, signature = data.rpartition(b".")
    header_part, dot2, payload = signing_input.partition(b".")
    if not (dot and dot2):
        raise InvalidToken("malformed")
    header = parse_payload(b64url_decode(header_part))
    if "crit" in header or not isinstance(header.get("kid"), str):
        raise InvalidToken("unusable header")
    key = key_for(header["kid"])
    if key is None:
        raise InvalidToken("unknown kid")
    if header.get("alg") != key.alg:
        raise InvalidToken("alg does not match the key")
    if not key.verify_signature(signing_input, b64url_decode(signature)):
        raise InvalidToken("bad signature")
    return parse_payload(b64url_decode(payload))
