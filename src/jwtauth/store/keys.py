"""Signing keys at rest: private keys sealed with the key-encryption key when there is one."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from ..config import Algorithm
from ..errors import ConfigError
from ..keys import KeyCipher, KeyState, SigningKey, generate_key, load_private_pem, private_pem
from .database import Database
from .tables import locks, signing_keys

log = logging.getLogger("jwtauth.keys")


class KeyStore:
    def __init__(self, db: Database, cipher: KeyCipher | None) -> None:
        self._db = db
        self._cipher = cipher

    def _dump(self, key: SigningKey) -> str:
        pem = private_pem(key)
        return self._cipher.seal(key.kid, pem) if self._cipher else pem

    def _load(self, row: sa.Row) -> SigningKey:
        stored = row.private_key
        if self._cipher is not None:
            pem = self._cipher.open(row.kid, stored)
        elif stored.startswith(KeyCipher.PREFIX):
            raise ConfigError(
                f"key {row.kid} is encrypted; set JWTAUTH_KEY_ENCRYPTION_KEY to open it"
            )
        else:
            pem = stored
        return load_private_pem(pem, kid=row.kid, alg=row.alg, state=KeyState(row.state))

    async def published(self) -> list[SigningKey]:
        """Every key that signs or may still verify a live token."""
        query = signing_keys.select().where(signing_keys.c.state != KeyState.RETIRED.value)
        async with self._db.connect() as conn:
            return [self._load(row) for row in await conn.execute(query)]

    async def ensure_current(self, alg: Algorithm, now: datetime) -> SigningKey:
        """The current signing key for ``alg``, generated on first start.

        Several processes may start at once; the lock row makes exactly one of them
        generate the key and the others read it.
        """
        async with self._db.begin() as conn:
            await conn.execute(
                locks.update().where(locks.c.name == "keys").values(taken_at=now)
            )
            current = (
                await conn.execute(
                    signing_keys.select().where(signing_keys.c.state == KeyState.CURRENT.value)
                )
            ).all()
            for row in current:
                if row.alg == alg:
                    return self._load(row)
            key = generate_key(alg)
            # A key of another algorithm stays published until its tokens expire.
            await conn.execute(
                signing_keys.update()
                .where(signing_keys.c.state == KeyState.CURRENT.value)
                .values(state=KeyState.RETIRING.value, retired_at=now)
            )
            await conn.execute(
                signing_keys.insert().values(
                    kid=key.kid, alg=key.alg, state=KeyState.CURRENT.value,
                    private_key=self._dump(key), created_at=now, activated_at=now,
                )
            )
            log.info("generated signing key", extra={"kid": key.kid, "alg": key.alg})
            return key
