"""Secrets at rest other than signing keys (TOTP secrets, undelivered mail tokens).

Each purpose gets its own AES-256-GCM key, derived from the one key-encryption key with
HKDF-SHA256 (RFC 5869) and the purpose as ``info``, and wrapped in ``keys.KeyCipher``:
a leak or misuse of one subkey says nothing about the signing keys' key, and a blob of
one purpose never opens as another. ``KeyCipher`` binds the row it belongs to (its
``kid`` argument, here e.g. the user id) as associated data, so a sealed value cannot be
moved to another row either.

Where the KEK comes from is the same rule as for signing keys (keyservice.py):
JWTAUTH_KEY_ENCRYPTION_KEY, else on SQLite the key file beside the database, else none
(PostgreSQL without a KEK: values are stored unsealed, and the server warns).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .keys import KeyCipher, load_or_create_kek_file


class SealPurpose(StrEnum):
    TOTP_SECRET = "totp-secret"  # noqa: S105 - a label, not a secret
    MAIL_TOKEN = "mail-token"  # noqa: S105 - a label, not a secret


def subkey_cipher(kek: bytes, purpose: SealPurpose) -> KeyCipher:
    """The cipher of one purpose, derived from ``kek``."""
    subkey = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None,
        info=b"jwtauth subkey v1\x00" + purpose.value.encode(),
    ).derive(kek)
    return KeyCipher(subkey)


def find_kek(configured: bytes | None, sqlite_path: Path | None) -> bytes | None:
    """The key-encryption key, by keyservice's rule (see the module docstring).

    Phase 2: keyservice should hand out this one value instead of both reading it."""
    if configured is not None:
        return configured
    if sqlite_path is not None:
        return load_or_create_kek_file(sqlite_path.with_name(sqlite_path.name + ".key"))
    return None


class Sealer:
    """Seal and open values of one purpose; without a KEK, values pass through unsealed
    (and ``sealed`` is False, for the start-up warning)."""

    def __init__(self, kek: bytes | None, purpose: SealPurpose) -> None:
        self._cipher = subkey_cipher(kek, purpose) if kek is not None else None
        self.purpose = purpose

    @property
    def sealed(self) -> bool:
        return self._cipher is not None

    def seal(self, row: str, value: str) -> str:
        return self._cipher.seal(f"{self.purpose}:{row}", value) if self._cipher else value

    def open(self, row: str, stored: str) -> str:
        if self._cipher is not None:
            return self._cipher.open(f"{self.purpose}:{row}", stored)
        if stored.startswith(KeyCipher.PREFIX):
            from ..errors import ConfigError

            raise ConfigError(
                f"a sealed {self.purpose} is stored; set JWTAUTH_KEY_ENCRYPTION_KEY to open it"
            )
        return stored
