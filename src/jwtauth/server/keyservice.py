"""The key lifecycle of one process: load, rotate, import, promote and retire signing
keys, and tell every other process (database log, Redis) when the set changes.

The wiring builds one ``KeyService`` and hands it to whoever needs keys: the server's
start and background jobs, ``POST /admin/keys/rotate`` and ``jwtauth keys ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from ..errors import Conflict
from ..keys import Keyring, SigningKey, key_from_secret
from .audit import AuditEventName as Audit
from .audit import Auditor, Client
from .config import Settings
from .keys import KeyCipher, generate_key, load_or_create_kek_file
from .store import Database
from .store.keys import KeyRecord, KeyStore
from .store.revocations import RevocationLog


class KeyNews(Protocol):
    """Tells the other processes at once (``EventBus``); the log tells them anyway."""

    def publish_keys(self, kid: str) -> None: ...


def key_cipher(settings: Settings, db: Database) -> KeyCipher | None:
    """Private keys at rest are sealed with JWTAUTH_KEY_ENCRYPTION_KEY, or on SQLite with
    a generated key file beside the database. PostgreSQL without a KEK stores plain PEM
    (SECURITY.md asks for a KEK in production)."""
    kek = settings.key_encryption_key
    if kek is not None:
        return KeyCipher(kek.get_secret_value().encode())
    if db.sqlite_path is not None:
        path = db.sqlite_path.with_name(db.sqlite_path.name + ".key")
        return KeyCipher(load_or_create_kek_file(path))
    return None


class KeyService:
    def __init__(
        self,
        settings: Settings,
        store: KeyStore,
        keyring: Keyring,
        log: RevocationLog,
        audit: Auditor,
        *,
        now: Callable[[], datetime],
        news: KeyNews | None = None,
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self._store = store
        self._news = news
        self._log = log
        self._audit = audit
        self._now = now

    @property
    def sealed(self) -> bool:
        """True when private keys are encrypted at rest."""
        return self._store.sealed

    async def records(self) -> list[KeyRecord]:
        """Every key with its state (``jwtauth keys list``)."""
        return await self._store.records()

    async def reload_keys(self) -> None:
        if self.settings.algorithm == "HS256":
            secret = self.settings.secret
            assert secret is not None  # validate_for_serving checked it
            self.keyring.replace([key_from_secret(secret.get_secret_value().encode())])
            return
        await self._store.ensure_current(self.settings.algorithm, self._now())
        self.keyring.replace(await self._store.published())

    async def maintain_keys(self) -> bool:
        """Promote a due standby key, retire keys whose tokens have expired, and start
        the next automatic rotation when it is due. True when the key set changed."""
        if self.settings.algorithm == "HS256":
            return False
        now = self._now()
        changed = await self._store.advance(now, retire_after=self.settings.revocation_ttl)
        if changed:
            # Promoted or retired here: the other processes must stop signing with the
            # old key and drop retired ones too.
            await self.announce("lifecycle")
        period = self.settings.key_rotation
        if period:
            lead = min(self.settings.key_rotation_lead, period)
            newest = await self._store.newest_activation()
            # Checked again under the keys lock (store.add): another instance may have
            # rotated since this read; then this key is dropped unused.
            if newest is None or newest + timedelta(seconds=period - lead) <= now:
                key = generate_key(self.settings.algorithm)
                if await self._store.add(key, now, lead=lead, unless_rotated_within=period - lead):
                    await self._added(key, lead=lead)
                    changed = True
        return changed

    async def import_key(self, key: SigningKey, *, lead: int = 0) -> str:
        """Add an operator's key (``jwtauth keys import``); it must use our algorithm."""
        if key.alg != self.settings.algorithm:
            raise Conflict(
                f"the key is {key.alg} but JWTAUTH_ALGORITHM is {self.settings.algorithm}"
            )
        await self._store.add(key, self._now(), lead=lead)
        await self._added(key, lead=lead, imported=True)
        return key.kid

    async def rotate_keys(
        self, *, lead: int = 0, actor_id: str | None = None, client: Client | None = None
    ) -> str:
        """Make a new signing key: signing now (lead 0), or published ``lead`` seconds
        before it signs so that JWKS caches hold it first. The old key keeps verifying
        until its last token expires."""
        if self.settings.algorithm == "HS256":
            raise Conflict("HS256 keys come from JWTAUTH_SECRET; change the secret instead.")
        key = generate_key(self.settings.algorithm)
        await self._store.add(key, self._now(), lead=lead)
        await self._added(key, lead=lead, actor_id=actor_id, client=client)
        return key.kid

    async def _added(
        self, key: SigningKey, *, lead: int, imported: bool = False,
        actor_id: str | None = None, client: Client | None = None,
    ) -> None:
        await self.announce(key.kid)
        await self.reload_keys()
        detail: dict[str, object] = {"kid": key.kid, "lead": lead}
        if imported:
            detail["imported"] = True
        await self._audit.record(
            Audit.KEY_ROTATED, actor_id=actor_id, client=client, detail=detail
        )

    async def announce(self, kid: str) -> None:
        """Tell every process to reload its keys: through the database log, which they
        poll, and through Redis at once when configured."""
        await self._log.announce_keys(kid, self._now())
        if self._news is not None:
            self._news.publish_keys(kid)
