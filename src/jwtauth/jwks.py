"""``JWKSCache``: the key set of a remote issuer, fetched from one URL and kept fresh.

The URL is fixed at construction. Nothing a token says (``jku``, ``x5u``, ``jwk``,
``kid``) ever chooses what is fetched (RFC 8725 section 3.10): a token can at most ask
for a rate-limited refetch of that same URL, by naming a kid the cache does not hold.

Keys are fetched on first use (or by ``await start()``), refetched when a token names an
unknown kid (at most once per ``min_refetch_interval``; concurrent callers share one
fetch), and refreshed in the background every ``refresh_interval`` or the response's
``Cache-Control: max-age`` when shorter (never more often than every 30 s). When the key
server is down or answers garbage, the last good key set keeps verifying for at most
``max_stale`` seconds (stale-if-error, RFC 5861); after that verification fails closed.

No framework here; the only I/O is the fetch, through ``httpx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from .errors import InvalidToken
from .keys import Keyring, SigningKey, load_jwks

log = logging.getLogger("jwtauth.jwks")

MIN_REFRESH_INTERVAL = 30.0  # a max-age of 0 must not turn the cache into a poller
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class JWKSFetchError(Exception):
    """One fetch failed; the cache logs it and keeps its last good key set."""


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    if "no-cache" in cache_control.lower() or "no-store" in cache_control.lower():
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def parse_jwks(
    body: bytes, *, algorithms: frozenset[str] | None = None
) -> tuple[list[SigningKey], list[dict[str, Any]]]:
    """The usable verification keys of a JWKS document, and their raw entries.

    ``jwtauth.keys.load_jwks`` decides which entries are usable (and logs the others).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise JWKSFetchError("the JWKS is not JSON") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JWKSFetchError('the JWKS is not an object with a "keys" list')
    try:
        loaded = load_jwks(entries, algorithms=algorithms)
    except ValueError as exc:
        raise JWKSFetchError(str(exc)) from exc
    return [key for key, _ in loaded], [entry for _, entry in loaded]


class JWKSCache:
    """The keys published at one JWKS URL, held in a ``Keyring`` that verifiers read."""

    def __init__(
        self,
        url: str,
        *,
        refresh_interval: float = 300.0,
        min_refetch_interval: float = 5.0,
        max_stale: float = 86400.0,
        timeout: float = 5.0,
        max_bytes: int = 1 << 20,
        allow_insecure: bool = False,
        algorithms: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise ValueError(f"a JWKS URL is an absolute https URL, not {url!r}")
        if parsed.scheme == "http" and not (allow_insecure or _is_loopback(parsed.host)):
            # Over plain HTTP anyone on the path could publish their own keys.
            raise ValueError("a JWKS URL must use https (plain http only for loopback hosts)")
        if min(refresh_interval, timeout, max_stale) <= 0 or min_refetch_interval < 0:
            raise ValueError("intervals and timeouts must be positive")
        self.url = str(parsed)
        self.refresh_interval = float(refresh_interval)
        self.min_refetch_interval = float(min_refetch_interval)
        self.max_stale = float(max_stale)
        self.timeout = float(timeout)
        self.max_bytes = max_bytes
        self.algorithms = algorithms  # keys of other algorithms are never loaded
        self.keyring = Keyring()
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._etag: str | None = None
        self._entries: list[dict[str, Any]] | None = None
        self._loaded_at: float | None = None  # last 200 or 304: the keys were confirmed
        self._last_attempt: float | None = None
        self._interval = self.refresh_interval
        self._next_refresh = 0.0
        self._inflight: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.fetches = 0  # attempts made, for operators and tests

    @property
    def effective_refresh_interval(self) -> float:
        """Seconds between background refreshes, after the last response's max-age."""
        return self._interval

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    async def start(self) -> bool:
        """Fetch now and start the background refresh; True when a key set is loaded."""
        self._start_refresher()
        await self._shared_fetch()
        return self.loaded

    async def aclose(self) -> None:
        """Stop the background refresh and close the HTTP client."""
        tasks = [t for t in (self._refresher, self._inflight) if t is not None]
        self._refresher = self._inflight = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ensure_keys(self) -> None:
        """Make sure a usable key set is held; no I/O while it is fresh.

        Fetches (rate limited) only before the first key set or once it is older than
        ``max_stale``; a due refresh is handed to the background task.
        """
        self._start_refresher()
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at > self.max_stale:
            await self.refetch()
        elif now >= self._next_refresh and self._wake is not None:
            self._wake.set()
        self.check_usable()

    def check_usable(self) -> None:
        """``InvalidToken("keys unavailable")`` when no key set may be used now."""
        if self._loaded_at is None:
            raise InvalidToken("keys unavailable")
        age = self._clock() - self._loaded_at
        if age > self.max_stale:
            log.error("JWKS from %s is %.0f s old, beyond max_stale; failing closed", self.url, age)
            raise InvalidToken("keys unavailable")

    async def refetch(self) -> bool:
        """Fetch now, unless a fetch is under way (then wait for it) or one started less
        than ``min_refetch_interval`` ago. True when a fetch was made or joined."""
        if self._inflight is None and self._last_attempt is not None:
            if self._clock() - self._last_attempt < self.min_refetch_interval:
                return False
        await self._shared_fetch()
        return True

    async def _shared_fetch(self) -> None:
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight = task
            task.add_done_callback(self._clear_inflight)
        # A cancelled caller must not cancel the fetch the others are waiting for.
        await asyncio.shield(task)

    def _clear_inflight(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    def _start_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._wake = asyncio.Event()
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            delay = max(0.0, self._next_refresh - self._clock())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            if self._clock() < self._next_refresh:
                continue
            try:
                await self._shared_fetch()
            except Exception:
                log.exception("JWKS refresh from %s failed unexpectedly", self.url)
                self._next_refresh = self._clock() + MIN_REFRESH_INTERVAL

    async def _fetch(self) -> None:
        """One fetch; on failure the last good key set stays, and the failure is logged."""
        now = self._last_attempt = self._clock()
        self.fetches += 1
        try:
            async with asyncio.timeout(self.timeout):
                status, headers, body = await self._get()
            if status == 304 and self._entries is not None:
                log.debug("JWKS from %s not modified", self.url)
            elif status == 200:
                self._install(body, headers.get("etag"))
            else:
                raise JWKSFetchError(f"HTTP status {status}")
        # ValueError: whatever a hostile body could still raise must not reach verify.
        except (JWKSFetchError, httpx.HTTPError, TimeoutError, ValueError) as exc:
            stale = "no key set yet" if self._loaded_at is None else "serving the last good set"
            reason = str(exc) or type(exc).__name__
            log.warning("JWKS fetch from %s failed (%s); %s", self.url, reason, stale)
            self._next_refresh = now + min(self.refresh_interval, MIN_REFRESH_INTERVAL)
            return
        max_age = _max_age(headers.get("cache-control"))
        self._interval = self.refresh_interval
        if max_age is not None:
            self._interval = min(self.refresh_interval, max(max_age, MIN_REFRESH_INTERVAL))
        self._loaded_at = now
        self._next_refresh = now + self._interval

    async def _get(self) -> tuple[int, httpx.Headers, bytes]:
        if self._client is None:
            # Redirects are not followed: the keys come from the configured URL only.
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        request_headers = {"Accept": "application/json"}
        if self._etag and self._entries is not None:
            request_headers["If-None-Match"] = self._etag
        async with self._client.stream("GET", self.url, headers=request_headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise JWKSFetchError(f"the JWKS is larger than {self.max_bytes} bytes")
            body = bytearray()
            if response.status_code == 200:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise JWKSFetchError(f"the JWKS is larger than {self.max_bytes} bytes")
            return response.status_code, response.headers, bytes(body)

    def _install(self, body: bytes, etag: str | None) -> None:
        keys, entries = parse_jwks(body, algorithms=self.algorithms)
        self._etag = etag
        if entries == self._entries:
            return  # same keys: keep the keyring version, so verified tokens stay cached
        self._entries = entries
        self.keyring.replace(keys)
        log.info("JWKS from %s loaded: kids %s", self.url, sorted(self.keyring.kids()))


__all__ = ["JWKSCache", "JWKSFetchError", "parse_jwks"]
