"""Signing keys at rest, and their lifecycle: next -> current -> retiring -> retired.

Private keys are sealed with the key-encryption key when there is one. Every change of
state happens under the ``keys`` lock row, so several processes never both rotate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import ConfigError, Conflict
from ...keys import Algorithm, KeyState, SigningKey
from ..keys import KeyCipher, generate_key, load_private_pem, private_pem
from .database import Database
from .tables import locks, signing_keys

log = logging.getLogger("jwtauth.keys")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    kid: str
    alg: str
    state: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    sealed: bool


_NEWEST_ACTIVATION = (
    sa.select(signing_keys.c.activated_at)
    .where(signing_keys.c.state.in_([KeyState.CURRENT.value, KeyState.NEXT.value]))
    .order_by(signing_keys.c.activated_at.desc())
    .limit(1)
)


class KeyStore:
    def __init__(self, db: Database, cipher: KeyCipher | None) -> None:
        self._db = db
        self._cipher = cipher

    @property
    def sealed(self) -> bool:
        """True when private keys are encrypted at rest."""
        return self._cipher is not None

    def _dump(self, key: SigningKey) -> str:
        pem = private_pem(key)
        return self._cipher.seal(key.kid, pem) if self._cipher else pem

    def _load(self, row: sa.Row[Any]) -> SigningKey:
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

    @staticmethod
    async def _lock(conn: AsyncConnection, now: datetime) -> None:
        await conn.execute(locks.update().where(locks.c.name == "keys").values(taken_at=now))

    async def published(self) -> list[SigningKey]:
        """Every key that signs, will sign, or may still verify a live token."""
        query = signing_keys.select().where(signing_keys.c.state != KeyState.RETIRED.value)
        async with self._db.connect() as conn:
            return [self._load(row) for row in await conn.execute(query)]

    async def records(self) -> list[KeyRecord]:
        query = signing_keys.select().order_by(signing_keys.c.created_at)
        async with self._db.connect() as conn:
            return [
                KeyRecord(
                    r.kid, r.alg, r.state, r.created_at, r.activated_at, r.retired_at,
                    r.private_key.startswith(KeyCipher.PREFIX),
                )
                for r in await conn.execute(query)
            ]

    async def _insert(
        self, conn: AsyncConnection, key: SigningKey, now: datetime, *, activate_at: datetime
    ) -> None:
        state = KeyState.CURRENT if activate_at <= now else KeyState.NEXT
        if state is KeyState.CURRENT:
            await self._demote_current(conn, now)
        await conn.execute(
            signing_keys.insert().values(
                kid=key.kid, alg=key.alg, state=state.value, private_key=self._dump(key),
                created_at=now, activated_at=activate_at,
            )
        )
        log.info("key added", extra={"kid": key.kid, "alg": key.alg, "state": state.value})

    @staticmethod
    async def _demote_current(conn: AsyncConnection, now: datetime) -> None:
        # The old key stays published (retiring) until every token it signed has expired.
        await conn.execute(
            signing_keys.update()
            .where(signing_keys.c.state == KeyState.CURRENT.value)
            .values(state=KeyState.RETIRING.value, retired_at=now)
        )

    async def ensure_current(self, alg: Algorithm, now: datetime) -> SigningKey:
        """The current signing key for ``alg``, generated on first start (or when the
        configured algorithm changed)."""
        async with self._db.begin() as conn:
            await self._lock(conn, now)
            current = (
                await conn.execute(
                    signing_keys.select().where(signing_keys.c.state == KeyState.CURRENT.value)
                )
            ).all()
            for row in current:
                if row.alg == alg:
                    return self._load(row)
            key = generate_key(alg)
            await self._insert(conn, key, now, activate_at=now)
            return key

    async def add(
        self, key: SigningKey, now: datetime, *, lead: int = 0,
        unless_rotated_within: int | None = None,
    ) -> bool:
        """Add a key: signing at once (lead 0) or published ``lead`` seconds ahead.

        With ``unless_rotated_within`` (automatic rotation), nothing is added if the
        newest key started (or starts) signing less than that many seconds before
        ``now``: the check and the insert hold the keys lock together, so of several
        instances that find a rotation due at once, exactly one rotates. True if added.
        """
        try:
            async with self._db.begin() as conn:
                await self._lock(conn, now)
                if unless_rotated_within is not None:
                    newest = (await conn.execute(_NEWEST_ACTIVATION)).scalar_one_or_none()
                    if newest is not None and newest > now - timedelta(
                        seconds=unless_rotated_within
                    ):
                        return False
                await self._add(conn, key, now, lead)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"key {key.kid} is already known") from exc
        return True

    async def _add(self, conn: AsyncConnection, key: SigningKey, now: datetime, lead: int) -> None:
        if lead > 0:
            # One standby at a time: a newer one replaces a not yet active one.
            await conn.execute(
                signing_keys.update()
                .where(signing_keys.c.state == KeyState.NEXT.value)
                .values(state=KeyState.RETIRED.value, retired_at=now)
            )
        await self._insert(conn, key, now, activate_at=now + timedelta(seconds=lead))

    async def advance(self, now: datetime, *, retire_after: int) -> bool:
        """Promote a due standby key and retire keys whose tokens have all expired."""
        changed = False
        async with self._db.begin() as conn:
            await self._lock(conn, now)
            due = (
                await conn.execute(
                    sa.select(signing_keys.c.kid)
                    .where(
                        signing_keys.c.state == KeyState.NEXT.value,
                        signing_keys.c.activated_at <= now,
                    )
                    .order_by(signing_keys.c.activated_at.desc())
                )
            ).first()
            if due is not None:
                await self._demote_current(conn, now)
                await conn.execute(
                    signing_keys.update()
                    .where(signing_keys.c.kid == due.kid)
                    .values(state=KeyState.CURRENT.value)
                )
                changed = True
            retired = await conn.execute(
                signing_keys.update()
                .where(
                    signing_keys.c.state == KeyState.RETIRING.value,
                    signing_keys.c.retired_at <= now - timedelta(seconds=retire_after),
                )
                .values(state=KeyState.RETIRED.value)
            )
            changed = changed or retired.rowcount > 0
        return changed

    async def newest_activation(self) -> datetime | None:
        """When the current or standby key (the newest) started or starts signing."""
        async with self._db.connect() as conn:
            activated: datetime | None = (
                await conn.execute(_NEWEST_ACTIVATION)
            ).scalar_one_or_none()
        return activated
