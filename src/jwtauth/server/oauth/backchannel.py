"""OpenID Connect Back-Channel Logout 1.0: logout tokens, and the sender that works
through the outbox (store/oauth_outbox.py).

A logout token (section 2.4) is a JWT with ``typ: logout+jwt`` (section 2.4 and RFC 8725
3.11, so it can never pass for an ID or access token), ``iss``, ``aud`` = the client,
``iat``, ``exp``, ``jti``, ``sub``, ``sid`` and the ``events`` member; never a ``nonce``.
It is signed with the key of the client's ID token algorithm, as its ID tokens were.

The sender claims due rows (one instance per row), POSTs each token to the address its
URI resolved to after the SSRF guard (``ssrf.pin``: no redirects followed), and records
the answer: 2xx is done; 5xx or no answer is retried with exponential back-off until
``max_attempts``; anything else is final (section 2.8: the RP said no).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from .config import OAuthConfig
from .jose import sign_jwt
from .ports import Keys
from .ssrf import ForbiddenTarget, pin

log = logging.getLogger("jwtauth.oauth")
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token_claims(*, issuer: str, client_id: str, sub: str, sid: str, now: int,
                        ttl: int) -> dict[str, Any]:
    return {
        "iss": issuer, "aud": client_id, "iat": now, "exp": now + ttl,
        "jti": secrets.token_urlsafe(16), "sub": sub, "sid": sid, "events": {EVENT: {}},
    }


class Job(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def client_id(self) -> str: ...
    @property
    def sid(self) -> str: ...
    @property
    def sub(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def attempts(self) -> int: ...


class Outbox(Protocol):
    async def claim_due(self, instance: str, now: datetime, *, limit: int = 20) -> list[Any]: ...
    async def delivered(self, job: Any, instance: str, *, now: datetime, status: int) -> bool: ...
    async def retry_at(self, job: Any, instance: str, *, at: datetime,
                       status: int | None) -> bool: ...
    async def failed(self, job: Any, instance: str, *, now: datetime,
                     status: int | None) -> bool: ...


class ClientAlgs(Protocol):
    async def id_token_alg(self, client_id: str) -> str | None:
        """The client's ID token algorithm; None for a client that no longer exists."""
        ...


def backoff(attempts: int, *, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 2, 4, 8 ... 1 h."""
    return float(min(cap, base * (2 ** max(0, attempts))))


class BackchannelSender:
    def __init__(
        self, config: OAuthConfig, outbox: Outbox, keys: Keys, clients: ClientAlgs,
        http: httpx.AsyncClient, *, now: Callable[[], datetime], instance: str | None = None,
        max_attempts: int = 8, timeout: float = 5.0,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.keys = keys
        self.clients = clients
        self.http = http
        self.now = now
        self.instance = instance or secrets.token_hex(8)
        self.max_attempts = max_attempts
        self.timeout = timeout

    async def run_once(self) -> int:
        """Send every due token this instance can claim; how many were delivered."""
        delivered = 0
        for job in await self.outbox.claim_due(self.instance, self.now()):
            delivered += await self._send(job)
        return delivered

    async def _send(self, job: Job) -> int:
        alg = await self.clients.id_token_alg(job.client_id)
        key = self.keys.id_token_key(alg) if alg else None
        if key is None:
            await self.outbox.failed(job, self.instance, now=self.now(), status=None)
            return 0
        now = self.now()
        token = sign_jwt(key, logout_token_claims(
            issuer=self.config.issuer, client_id=job.client_id, sub=job.sub, sid=job.sid,
            now=int(now.timestamp()), ttl=self.config.logout_token_ttl,
        ), typ="logout+jwt")
        status: int | None = None
        try:
            target = await pin(job.target, allow_loopback=self.config.allow_loopback)
            response = await self.http.post(
                target.url, data={"logout_token": token},
                headers={"Host": _host_header(target.host, target.port, job.target)},
                extensions={"sni_hostname": target.host}, timeout=self.timeout,
                follow_redirects=False,
            )
            status = response.status_code
        except ForbiddenTarget as exc:
            log.warning("back-channel logout to client %s refused: %s", job.client_id, exc)
            await self.outbox.failed(job, self.instance, now=self.now(), status=None)
            return 0
        except httpx.HTTPError as exc:
            log.info("back-channel logout to client %s: %s", job.client_id, type(exc).__name__)
        if status is not None and 200 <= status < 300:
            await self.outbox.delivered(job, self.instance, now=self.now(), status=status)
            return 1
        if (status is None or status >= 500) and job.attempts + 1 < self.max_attempts:
            at = self.now() + timedelta(seconds=backoff(job.attempts))
            await self.outbox.retry_at(job, self.instance, at=at, status=status)
        else:
            await self.outbox.failed(job, self.instance, now=self.now(), status=status)
        return 0


def _host_header(host: str, port: int, uri: str) -> str:
    default = 443 if uri.startswith("https:") else 80
    name = f"[{host}]" if ":" in host else host
    return name if port == default else f"{name}:{port}"
