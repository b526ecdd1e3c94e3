"""Signing keys on the server: generate them, read operators' PEM files, and protect
private keys at rest (AES-256-GCM under a key-encryption key)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from ..errors import ConfigError
from ..keys import Algorithm, JoseKey, KeyState, SigningKey
from .files import require_private


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
        require_private(path)
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


