"""Signing keys: generate, serialize, protect at rest, and publish as a JWKS.

A key is bound to exactly one algorithm when it is made; verification uses the key's
algorithm and never the one a token names (RFC 8725 section 3.1).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from .config import Algorithm
from .errors import ConfigError
from .signatures import SignatureCheck, signature_check

JoseKey = ECKey | RSAKey | OKPKey | OctKey

ASYMMETRIC: frozenset[str] = frozenset({"ES256", "RS256", "EdDSA"})


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


def generate_key(alg: Algorithm) -> SigningKey:
    """A fresh asymmetric key; its kid is the RFC 7638 thumbprint."""
    jwk: JoseKey
    if alg == "ES256":
        jwk = ECKey.generate_key("P-256")
    elif alg == "RS256":
        jwk = RSAKey.generate_key(2048)
    elif alg == "EdDSA":
        jwk = OKPKey.generate_key("Ed25519")
    else:
        raise ConfigError(f"{alg} keys are not generated; HS256 takes JWTAUTH_SECRET")
    return SigningKey(kid=jwk.thumbprint(), alg=alg, jwk=jwk)


def key_from_secret(secret: bytes) -> SigningKey:
    """The HS256 key for a shared secret.

    The kid is a keyed digest, not the RFC 7638 thumbprint, so nothing published is a
    plain hash of the secret.
    """
    digest = hashlib.sha256(b"jwtauth-hs256-kid\x00" + secret).digest()
    kid = "hs-" + base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")
    return SigningKey(kid=kid, alg="HS256", jwk=OctKey.import_key(secret))


def private_pem(key: SigningKey) -> str:
    if isinstance(key.jwk, OctKey):
        raise ValueError("an HS256 secret has no PEM form")
    return key.jwk.as_pem(private=True).decode()


def load_private_pem(pem: str, *, kid: str, alg: Algorithm, state: KeyState) -> SigningKey:
    jwk: JoseKey
    if alg == "ES256":
        jwk = ECKey.import_key(pem)
    elif alg == "RS256":
        jwk = RSAKey.import_key(pem)
    elif alg == "EdDSA":
        jwk = OKPKey.import_key(pem)
    else:
        raise ConfigError(f"stored key {kid} has an unsupported algorithm {alg}")
    return SigningKey(kid=kid, alg=alg, jwk=jwk, state=state)


def key_from_private_pem(pem: str) -> SigningKey:
    """An operator's private key (PEM); its algorithm follows from its type: P-256 is
    ES256, RSA (2048 bits or more) RS256, Ed25519 EdDSA. Anything else is refused."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        loaded = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError("not an unencrypted PEM private key") from exc
    alg: Algorithm
    if isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1":
        alg = "ES256"
    elif isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size >= 2048:
        alg = "RS256"
    elif isinstance(loaded, ed25519.Ed25519PrivateKey):
        alg = "EdDSA"
    else:
        raise ConfigError("only P-256, RSA of 2048 bits or more, and Ed25519 keys are accepted")
    key = load_private_pem(pem, kid="", alg=alg, state=KeyState.CURRENT)
    return SigningKey(kid=key.jwk.thumbprint(), alg=alg, jwk=key.jwk)


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
    if alg == "ES256" and data.get("kty") == "EC" and data.get("crv") == "P-256":
        jwk = ECKey.import_key(members)
    elif alg == "RS256" and data.get("kty") == "RSA":
        jwk = RSAKey.import_key(members)
        if jwk.public_key.key_size < 2048:
            raise ValueError("RSA keys shorter than 2048 bits are refused")
    elif alg == "EdDSA" and data.get("kty") == "OKP" and data.get("crv") == "Ed25519":
        jwk = OKPKey.import_key(members)
    else:
        raise ValueError(f"unsupported JWKS key (alg={alg!r}, kty={data.get('kty')!r})")
    return SigningKey(kid=kid, alg=alg, jwk=jwk)


class KeyCipher:
    """AES-256-GCM for private keys at rest; the kid is bound as associated data so a
    stored blob cannot be moved to another key's row."""

    PREFIX = "aesgcm:v1:"

    def __init__(self, kek: bytes) -> None:
        if len(kek) < 32:
            raise ConfigError("the key-encryption key must be at least 32 bytes")
        self._aead = AESGCM(hashlib.sha256(b"jwtauth-kek\x00" + kek).digest())

    def seal(self, kid: str, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), kid.encode())
        return self.PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, kid: str, stored: str) -> str:
        if not stored.startswith(self.PREFIX):
            raise ConfigError(f"key {kid} is stored unencrypted but a key-encryption key is set")
        try:
            # A damaged blob (bad base64, short nonce, wrong tag) fails closed like a wrong KEK.
            raw = base64.b64decode(stored[len(self.PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], kid.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise ConfigError(
                f"key {kid} cannot be decrypted: wrong JWTAUTH_KEY_ENCRYPTION_KEY or key file"
            ) from exc


def is_sealed(stored: str) -> bool:
    return stored.startswith(KeyCipher.PREFIX)


def load_or_create_kek_file(path: Path) -> bytes:
    """The key-encryption key kept beside an SQLite database, created 0600 on first use.

    A file that others can read is refused: it would expose every signing key.
    """
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
            )
        data = path.read_bytes().strip()
        try:
            kek = base64.urlsafe_b64decode(data)
        except ValueError as exc:
            raise ConfigError(f"{path} does not hold a key") from exc
        if len(kek) < 32:
            raise ConfigError(f"{path} does not hold a 32-byte key")
        return kek
    kek = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(base64.urlsafe_b64encode(kek) + b"\n")
    return kek


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
