"""``Verifier``: what a resource server uses to check our access tokens.

It holds keys and (optionally) a revocation list in memory, so ``verify`` does no I/O.
A verifier built by ``from_jwks_url`` reads its keys from a ``JWKSCache``: ``verify`` does
I/O only to load the first key set, or to refetch (rate limited) for an unknown kid.
A verified token is remembered (bounded) so a repeated token skips the signature check;
a remembered result is never trusted past its ``exp`` nor past a revocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .claims import Claims
from .errors import InvalidToken
from .keys import (
    Algorithm,
    Keyring,
    SigningKey,
    allowed_algorithms,
    key_from_secret,
    load_jwks,
    load_public_jwk,
)
from .revocation import RevocationList
from .tokens import ClaimsPolicy, verify_access_token

if TYPE_CHECKING:
    from .jwks import JWKSCache


class Verifier:
    """Checks access tokens with keys held in memory; build it with a ``from_*`` method.

    Every ``from_*`` method takes the same keyword options:

    ``issuer``       the one ``iss`` accepted.
    ``audience``     one audience or a list: a token passes when its ``aud`` names any.
    ``algorithms``   an allowlist, e.g. ``["ES256"]``: a key of another algorithm is never
                     loaded and verifies nothing. None (the default): each key's own
                     algorithm, which is always the one checked (never the token's).
    ``leeway``       seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
    ``revocations``  a ``RevocationList`` to consult (e.g. ``RevocationFeed.revocations``).
    ``clock``        the time source, seconds since the epoch (tests move it).
    ``cache_size``   how many verified tokens to remember.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Collection[Algorithm] | None = None,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if leeway < 0 or cache_size < 1:
            raise ValueError("leeway must be >= 0 and cache_size >= 1")
        self.keyring = keyring
        self.policy = ClaimsPolicy(issuer=issuer, audience=audience, leeway=leeway)
        self.algorithms = allowed_algorithms(algorithms)
        self.revocations = revocations
        self._clock = clock
        self._cache: dict[str, Claims] = {}
        self._cache_size = cache_size
        self._cache_version = keyring.version
        self.jwks: JWKSCache | None = None

    @classmethod
    def from_keys(
        cls,
        keys: Iterable[SigningKey | dict[str, Any]],
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Collection[Algorithm] | None = None,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> Verifier:
        """From local keys: ``SigningKey`` objects or public JWK dicts (with kid and alg).

        Every key given must be usable (``ValueError`` otherwise); with ``algorithms``,
        the keys of other algorithms are left out, and at least one must remain.
        """
        allowed = allowed_algorithms(algorithms)
        loaded = [k if isinstance(k, SigningKey) else load_public_jwk(k) for k in keys]
        kept = [k for k in loaded if allowed is None or k.alg in allowed]
        if not kept:
            raise ValueError("no key to verify with (after the algorithms allowlist)")
        return cls(
            Keyring(kept), issuer=issuer, audience=audience, algorithms=algorithms,
            leeway=leeway, revocations=revocations, clock=clock, cache_size=cache_size,
        )

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any],
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Collection[Algorithm] | None = None,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> Verifier:
        """From a JWKS document (a dict with a ``keys`` list), as ``from_jwks_url`` reads
        one: an unusable entry is skipped with a warning, and ``ValueError`` only when no
        usable key remains (see ``jwtauth.keys.load_jwks``)."""
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise ValueError("a JWKS is an object with a list of keys")
        loaded = load_jwks(entries, algorithms=allowed_algorithms(algorithms))
        return cls(
            Keyring([key for key, _ in loaded]), issuer=issuer, audience=audience,
            algorithms=algorithms, leeway=leeway, revocations=revocations, clock=clock,
            cache_size=cache_size,
        )

    @classmethod
    def from_secret(
        cls,
        secret: str | bytes,
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Collection[Algorithm] | None = None,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> Verifier:
        """HS256 with a shared secret of at least 32 bytes."""
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 32:
            raise ValueError("an HS256 secret must be at least 32 bytes")
        return cls.from_keys(
            [key_from_secret(raw)], issuer=issuer, audience=audience, algorithms=algorithms,
            leeway=leeway, revocations=revocations, clock=clock, cache_size=cache_size,
        )

    @classmethod
    def from_jwks_url(
        cls,
        url: str,
        *,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Collection[Algorithm] | None = None,
        leeway: int = 30,
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        refresh_interval: float = 300.0,
        min_refetch_interval: float = 5.0,
        max_stale: float = 86400.0,
        timeout: float = 5.0,
        allow_insecure: bool = False,
    ) -> Verifier:
        """Keys from the JWKS at ``url`` (and only there), cached and kept fresh.

        No I/O here: the key set is fetched at the first ``verify`` (or ``await
        verifier.jwks.start()``). ``url`` must be https, or http on a loopback host unless
        ``allow_insecure``. See ``jwtauth.jwks.JWKSCache`` for the refresh rules.
        """
        from .jwks import JWKSCache

        cache = JWKSCache(
            url,
            refresh_interval=refresh_interval,
            min_refetch_interval=min_refetch_interval,
            max_stale=max_stale,
            timeout=timeout,
            allow_insecure=allow_insecure,
            algorithms=allowed_algorithms(algorithms),
            clock=clock,
        )
        verifier = cls(
            cache.keyring, issuer=issuer, audience=audience, algorithms=algorithms,
            leeway=leeway, revocations=revocations, clock=clock, cache_size=cache_size,
        )
        verifier.jwks = cache
        return verifier

    async def aclose(self) -> None:
        """Stop a JWKS verifier's background refresh and close its HTTP client."""
        if self.jwks is not None:
            await self.jwks.aclose()

    def verify_sync(self, token: str) -> Claims:
        """``verify`` without I/O: a JWKS verifier uses the key set it holds now."""
        if self.jwks is not None:
            self.jwks.check_usable()
        if not isinstance(token, str):
            # A caller's None or bytes is a bad token, not a TypeError from the cache.
            raise InvalidToken("not a string")
        now = self._clock()
        cache = self._cache
        if self._cache_version != self.keyring.version:
            # The key set changed: results verified with a removed key must not outlive it.
            cache.clear()
            self._cache_version = self.keyring.version
        claims = cache.get(token)
        if claims is None:
            claims = verify_access_token(token, self.keyring, self.policy, now, self.algorithms)
            if len(cache) >= self._cache_size:
                # Drop the older half (dicts keep insertion order): cheap and bounded.
                for stale in list(cache)[: self._cache_size // 2]:
                    del cache[stale]
            cache[token] = claims
        elif now > claims.exp + self.policy.leeway:
            del cache[token]
            raise InvalidToken("expired")
        if self.revocations is not None:
            # A revocation list nobody has vouched for lately may miss a logout: refuse.
            self.revocations.verify_current()
            if self.revocations.is_revoked(claims):
                raise InvalidToken("revoked")
        return claims

    async def verify(self, token: str) -> Claims:
        """The claims of a good token; ``InvalidToken`` for anything else."""
        if self.jwks is None:
            return self.verify_sync(token)
        await self.jwks.ensure_keys()
        try:
            return self.verify_sync(token)
        except InvalidToken as exc:
            # A kid we do not hold may be a key published since the last fetch. The
            # refetch is of the configured URL only, and rate limited, so a flood of
            # made-up kids costs the key server at most one request per interval.
            if exc.reason != "unknown kid" or not await self.jwks.refetch():
                raise
        return self.verify_sync(token)
