"""What a server process does besides answering requests: one named job each, and the
small runner that repeats them.

- ``follow_revocation_log``: revocations (and key changes) written by other processes,
  into this one's memory; sooner when Redis reports a key change or comes back.
- ``purge_revocation_log``, ``prune_audit`` and ``maintain_keys`` (promotion, retirement
  and automatic rotation of signing keys): the maintenance, every 30 seconds.

A job that cannot reach the database logs a warning and runs again at its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ..revocation import RevocationKind, RevocationList
from .config import Settings
from .keyservice import KeyService
from .store.audit import AuditStore
from .store.outage import STORE_ERRORS, StoreHealth, is_outage
from .store.revocations import RevocationLog, RevocationRecord

log = logging.getLogger("jwtauth")

FOLLOW_OVERLAP = 5.0  # seconds re-read on each poll, for transactions that commit late
MAINTENANCE_INTERVAL = 30.0


def _remember(revocations: RevocationList, entries: list[RevocationRecord]) -> set[int]:
    """Add the revocations to memory; the ids of the key-change entries among them."""
    key_news: set[int] = set()
    for entry in entries:
        if entry.kind is RevocationKind.KEYS_CHANGED:
            key_news.add(entry.id)
        else:
            revocations.add(entry.kind, entry.value, entry.expires_at.timestamp())
    return key_news


async def load_revocations(
    revocation_log: RevocationLog, revocations: RevocationList, now: datetime
) -> None:
    """At start: every live revocation into memory, then vouch for the list."""
    loaded_at = time.monotonic()
    _remember(revocations, await revocation_log.active(now))
    revocations.confirm(loaded_at)


class Background:
    def __init__(
        self,
        settings: Settings,
        *,
        revocation_log: RevocationLog,
        revocations: RevocationList,
        keys: KeyService,
        audit: AuditStore,
        clock: Callable[[], float],
        health: StoreHealth | None = None,
    ) -> None:
        self._settings = settings
        self._log = revocation_log
        self._revocations = revocations
        self._keys = keys
        self._audit = audit
        self._clock = clock
        self._health = health
        self._since = clock()
        self._handled_key_news: set[int] = set()  # each entry is re-read in the overlap
        self.wake = asyncio.Event()  # set: follow the log now, not at the next poll
        self._tasks: list[asyncio.Task[None]] = []

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- the jobs ----------------------------------------------------------------------

    async def follow_revocation_log(self) -> None:
        """Replay what other processes wrote to the log since the last read."""
        started = self._clock()
        fresh_at = time.monotonic()
        moment = datetime.fromtimestamp(self._since - FOLLOW_OVERLAP, UTC)
        key_news = _remember(self._revocations, await self._log.since(moment))
        self._revocations.confirm(fresh_at)
        self._since = started
        # Any announcement not yet handled, even of a kid already held: a standby key
        # promoted or a key retired elsewhere changes what this process signs.
        if key_news - self._handled_key_news:
            await self._keys.reload_keys()
        self._handled_key_news = key_news

    async def purge_revocation_log(self) -> None:
        """Forget entries older than any token they could kill."""
        await self._log.purge(self._now())

    async def prune_audit(self) -> int:
        """Apply JWTAUTH_AUDIT_RETENTION (0 keeps all). The number of events deleted."""
        retention = self._settings.audit_retention
        if not retention:
            return 0
        deleted = await self._audit.prune(self._now() - timedelta(seconds=retention))
        if deleted:
            log.info("audit: deleted %d events older than %d s", deleted, retention)
        return deleted

    async def maintain_keys(self) -> None:
        """Promote a due standby key, retire spent ones, rotate when due; reload here."""
        if await self._keys.maintain_keys():
            await self._keys.reload_keys()

    async def maintenance(self) -> None:
        await self.purge_revocation_log()
        await self.prune_audit()
        await self.maintain_keys()

    # -- the runner --------------------------------------------------------------------

    def start(self) -> None:
        interval = self._settings.revocation_poll_interval
        self._tasks = [
            asyncio.create_task(self._repeat(
                self.follow_revocation_log, interval, wake=self.wake,
                failure="revocation log unreachable",
            )),
            asyncio.create_task(self._repeat(
                self.maintenance, MAINTENANCE_INTERVAL, first=interval,
                failure="maintenance failed",
            )),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _repeat(
        self, job: Callable[[], Awaitable[object]], interval: float, *,
        wake: asyncio.Event | None = None, first: float | None = None, failure: str,
    ) -> None:
        delay = interval if first is None else first
        while True:
            if wake is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
                wake.clear()
            delay = interval
            try:
                await job()
            except STORE_ERRORS as exc:
                if self._health is not None and is_outage(exc):
                    self._health.failed(exc)  # logged once per outage, not every poll
                else:
                    log.warning("%s: %s", failure, type(exc).__name__)
