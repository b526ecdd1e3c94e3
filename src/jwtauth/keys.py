"""Verification keys: bound to one algorithm, published as a JWKS, held in a ``Keyring``.

A key is bound to exactly one algorithm when it is made; verification uses the key's
algorithm and never the one a token names (RFC 8725 section 3.1). Generating keys and
keeping private keys at rest is the server's business (``jwtauth.server.keys``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from .errors import ConfigError
from .signatures import SignatureCheck, signature_check

# Named for the concern: operators look for a bad key set under "jwks", wherever it was read.
log = logging.getLogger("jwtauth.jwks")

Algorithm = Literal["ES256", "RS256", "EdDSA", "HS256"]
JoseKey = ECKey | RSAKey | OKPKey | OctKey

ALGORITHMS: frozenset[str] = frozenset(get_args(Algorithm))
ASYMMETRIC: frozenset[str] = frozenset({"ES256", "RS256", "EdDSA"})


def allowed_algorithms(algorithms: Iterable[str] | None) -> frozenset[str] | None:
    """An algorithm allowlist, checked: None (every key's own algorithm) or a non-empty
    set of the algorithms this library verifies."""
    if algorithms is None:
        return None
    if isinstance(algorithms, str):
        raise TypeError('algorithms is a list of names, e.g. ["ES256"], not one string')
    chosen = frozenset(algorithms)
    unknown = chosen - ALGORITHMS
    if unknown or not chosen:
        raise ValueError(
            f"algorithms must be some of {sorted(ALGORITHMS)}, not {sorted(map(str, unknown))}"
        )
    return chosen


class KeyState(StrEnum):
    NEXT = "next"  # published, not yet signing
    CURRENT = "current"  # signing
    RETIRING = "retiring"  # published until its last token expires
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: Algorithm
    jwk: JoseKey = field(repr=False)
    state: KeyState = KeyState.CURRENT
    # check(signing_input, signature) -> bool, built once: the per-token path is the
    # cryptography call alone.
    verify_signature: SignatureCheck = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verify_signature", signature_check(self.alg, self.jwk))

    @property
    def is_asymmetric(self) -> bool:
        return self.alg in ASYMMETRIC

    def public_jwk(self) -> dict[str, Any]:
        """The JWKS entry: public members only, never ``d``, ``p``, ``q`` or ``k``."""
        if not self.is_asymmetric:
            raise ValueError("a symmetric key has no public form")
        data = dict(self.jwk.as_dict(private=False))
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return data


def key_from_secret(secret: bytes) -> SigningKey:
    """The HS256 key for a shared secret.

    The kid is a keyed digest, not the RFC 7638 thumbprint, so nothing published is a
    plain hash of the secret.
    """
    digest = hashlib.sha256(b"jwtauth-hs256-kid\x00" + secret).digest()
    kid = "hs-" + base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")
    return SigningKey(kid=kid, alg="HS256", jwk=OctKey.import_key(secret))


def load_public_jwk(data: dict[str, Any]) -> SigningKey:
    """A verification-only key from a JWKS entry; the entry must name its algorithm."""
    alg = data.get("alg")
    kid = data.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("a JWKS key without kid cannot be selected safely")
    # RFC 7517 section 4.2/4.3: a key published for encryption must not verify signatures.
    if data.get("use", "sig") != "sig":
        raise ValueError(f"use is {data.get('use')!r}, not sig")
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError(f"key_ops {ops!r} do not include verify")
    members = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "k")}
    jwk: JoseKey
    try:
        if alg == "ES256" and data.get("kty") == "EC" and data.get("crv") == "P-256":
            jwk = ECKey.import_key(members)
        elif alg == "RS256" and data.get("kty") == "RSA":
            # Measured before joserfc sees it: joserfc warns (SecurityWarning) on a short
            # modulus, and a warning must not be how a hostile JWKS reaches the caller.
            if _modulus_bits(data.get("n")) < 2048:
                raise ValueError("RSA keys shorter than 2048 bits are refused")
            jwk = RSAKey.import_key(members)
            if jwk.public_key.key_size < 2048:
                raise ValueError("RSA keys shorter than 2048 bits are refused")
        elif alg == "EdDSA" and data.get("kty") == "OKP" and data.get("crv") == "Ed25519":
            jwk = OKPKey.import_key(members)
        else:
            raise ValueError(f"unsupported JWKS key (alg={alg!r}, kty={data.get('kty')!r})")
    except (JoseError, TypeError, KeyError, OverflowError) as exc:
        # joserfc says KeyParameterError for a missing or mistyped member, cryptography
        # ValueError or TypeError for a point off the curve or a number it cannot take:
        # all mean "not a usable key", one ValueError for every caller.
        raise ValueError(f"malformed {data.get('kty')!r} key: {exc}") from exc
    return SigningKey(kid=kid, alg=alg, jwk=jwk)


def _modulus_bits(n: Any) -> int:
    if not isinstance(n, str):
        raise ValueError("n must be a base64url string")
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(raw, "big").bit_length()


def load_jwks(
    entries: list[Any], *, algorithms: frozenset[str] | None = None
) -> list[tuple[SigningKey, dict[str, Any]]]:
    """The usable verification keys of a JWKS's ``keys`` list, each with its entry.

    An entry that cannot be used (no kid, an unknown algorithm or a malformed key, a short
    RSA key, ``use`` other than ``sig``) is skipped with a warning, so one bad entry does
    not take the good keys down with it; a key outside ``algorithms`` is left out quietly
    (an issuer may publish keys for others, e.g. RS256 for ID tokens). A kid that appears
    twice is dropped entirely: picking one of two keys by kid would be ambiguous.
    ``ValueError`` when no usable key remains.
    """
    keys: dict[str, tuple[SigningKey, dict[str, Any]]] = {}
    duplicated: set[str] = set()
    outside: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            log.warning("JWKS entry %d skipped: not an object", index)
            continue
        try:
            key = load_public_jwk(entry)
        except ValueError as exc:
            log.warning("JWKS entry %d skipped: %s", index, exc)
            continue
        if algorithms is not None and key.alg not in algorithms:
            outside.append(key.kid)
            continue
        if key.kid in keys or key.kid in duplicated:
            duplicated.add(key.kid)
            keys.pop(key.kid, None)
            log.warning("JWKS kid %r appears more than once; all its entries skipped", key.kid)
            continue
        keys[key.kid] = (key, entry)
    if outside:
        log.debug("JWKS keys %s left out: their algorithms are not allowed", outside)
    if not keys:
        raise ValueError("the JWKS holds no usable key")
    return list(keys.values())


class Keyring:
    """The keys one process holds in memory: one signing key and every key that may
    still verify a live token. Swapped whole, so readers never see a half update."""

    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self._by_kid: dict[str, SigningKey] = {}
        self._signing: SigningKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._etag = ""
        self.version = 0
        self.replace(keys or [])

    def replace(self, keys: list[SigningKey]) -> None:
        by_kid = {k.kid: k for k in keys if k.state != KeyState.RETIRED}
        signing = next((k for k in keys if k.state == KeyState.CURRENT), None)
        published = [k.public_jwk() for k in by_kid.values() if k.is_asymmetric]
        jwks = {"keys": published}
        body = json.dumps(jwks, sort_keys=True, separators=(",", ":")).encode()
        self._by_kid, self._signing, self._jwks = by_kid, signing, jwks
        self._etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self.version += 1

    @property
    def signing_key(self) -> SigningKey:
        if self._signing is None:
            raise ConfigError("no current signing key")
        return self._signing

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def kids(self) -> frozenset[str]:
        return frozenset(self._by_kid)

    @property
    def jwks(self) -> dict[str, Any]:
        return self._jwks

    @property
    def etag(self) -> str:
        return self._etag

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(k.alg for k in self._by_kid.values())
