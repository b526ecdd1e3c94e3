"""What the OAuth core needs from the rest of the server: Protocols, and the plain
records that cross them. The core imports no web framework and no SQL; the store
(``jwtauth.server.store.oauth_*``) implements the repositories, and the wiring phase
adapts the sessions, users, keys and revocation machinery to the other Protocols. Each
Protocol's docstring says what an implementation must guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ...claims import Claims
from ...keys import SigningKey
from .clients import ClientMetadata

# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserProfile:
    id: str
    username: str
    roles: tuple[str, ...]
    email: str | None = None
    email_verified: bool = False


@dataclass(frozen=True, slots=True)
class SignIn:
    """The browser's sign-in session, as the web layer found it from the ``Path=/``
    cookie (live, not revoked, its user enabled)."""

    user_id: str
    session_id: str
    auth_time: datetime
    amr: tuple[str, ...] = ("pwd",)
    acr: str = "aal1"


@dataclass(frozen=True, slots=True)
class StoredClient:
    metadata: ClientMetadata
    secret_hash: str | None  # None for a public client
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code as stored: only its hash, and what it is bound to."""

    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str
    nonce: str | None
    resource: str | None
    signin_sid: str
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str
    expires_at: datetime


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this request is the one use of the code
    REPLAYED = "replayed"  # the code was used before: revoke what that use issued
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CodeClaim:
    outcome: ClaimOutcome
    code: CodeRecord | None = None  # CLAIMED
    family_id: str | None = None  # REPLAYED: the family the first use created, if yet


@dataclass(frozen=True, slots=True)
class GrantLink:
    """Which client holds a session family, with what; a row per OAuth family."""

    session_id: str  # the family (``sid`` of the client's access and ID tokens)
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    resource: str | None
    parent_sid: str | None  # the sign-in session it came from
    offline: bool  # offline_access granted: outlives the sign-in session
    nonce: str | None
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewFamily:
    session_id: str
    refresh_token: str | None
    refresh_expires_in: int | None


class RotationOutcome(StrEnum):
    ROTATED = "rotated"
    GRACE = "grace"
    REUSED = "reused"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Rotation:
    outcome: RotationOutcome
    session_id: str | None = None
    user_id: str | None = None
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    username: str | None = None
    roles: tuple[str, ...] = ()


# -- what the rest of the server provides --------------------------------------------------


class SessionFamilies(Protocol):
    """The refresh families of API.md ("Refresh token"), for OAuth clients. The wiring
    phase adapts ``store/sessions.py`` + the service's revocation unit of work."""

    async def create(self, *, user_id: str, client_id: str, refresh: bool,
                     now: datetime) -> NewFamily:
        """A new family for ``user_id`` (a refresh token only with ``refresh``). Its id
        becomes the ``sid`` of every token issued from it, so revoking it kills them."""
        ...

    async def rotate(self, refresh_token: str, *, now: datetime) -> Rotation:
        """The one rotation function: one winner under concurrency, reuse of a rotated-away
        token revokes the family (memory and log) and answers REUSED, the grace window of
        JWTAUTH_REFRESH_REUSE_GRACE applies. Carries the user's current name and roles."""
        ...

    async def family_of(self, refresh_token: str) -> str | None:
        """The family id of any refresh token ever issued (current or rotated away)."""
        ...

    async def is_current(self, refresh_token: str, *, now: datetime) -> bool:
        """True for the live, unused, unexpired token of a live family (introspection)."""
        ...

    async def revoke(self, session_ids: Sequence[str], *, now: datetime) -> None:
        """Revoke these families in one transaction (log row included), then in memory,
        so their access tokens are refused from now on, on every instance."""
        ...


class Users(Protocol):
    async def profile(self, user_id: str) -> UserProfile | None:
        """None for a missing or disabled user. Userinfo calls this for every request:
        the implementation must answer a known user from memory (API.md: userinfo is
        answered without a database query), kept fresh by the user-change events."""
        ...


class AccessTokenVerifier(Protocol):
    def verify_sync(self, token: str) -> Claims:
        """The library's check (signature, typ, iss, exp, nbf, revocation: no I/O) for any
        audience this server issues (its own and every client's registered resources) and
        for tokens without ``sid`` (client_credentials). ``InvalidToken`` otherwise."""
        ...


class AccessTokenRevoker(Protocol):
    async def revoke_access_token(self, claims: Claims) -> None:
        """RFC 7009 for one access token: it alone dies (by ``jti``, until its ``exp``),
        on every instance. Needs a jti kind in the revocation list (library)."""
        ...

    async def revoke_client(self, client_id: str) -> None:
        """Every client_credentials token of a deleted client dies (sub = client_id)."""
        ...


class Keys(Protocol):
    def access_token_key(self) -> SigningKey:
        """The server's current signing key (the one first-party tokens use)."""
        ...

    def id_token_key(self, alg: str) -> SigningKey | None:
        """A current key of ``alg``: RS256 always (an RSA key kept and published beside
        the default one), the server's own algorithm too."""
        ...

    def verification_key(self, kid: str) -> SigningKey | None:
        """Any published key by kid (to check an ``id_token_hint``)."""
        ...


# -- what the store provides (store/oauth_*.py) -------------------------------------------


class ClientRepository(Protocol):
    async def get(self, client_id: str) -> StoredClient | None: ...
    async def add(self, client: StoredClient, *, now: datetime) -> None: ...
    async def replace(self, metadata: ClientMetadata, *, now: datetime) -> bool: ...
    async def delete(self, client_id: str) -> bool: ...
    async def page(self, *, limit: int, offset: int) -> list[StoredClient]: ...


class CodeRepository(Protocol):
    async def add(self, code: CodeRecord, *, now: datetime) -> None: ...

    async def claim(self, code_hash: str, *, now: datetime) -> CodeClaim:
        """Mark the code used; exactly one of any number of concurrent claims gets
        CLAIMED, every later one REPLAYED (the row is marked so)."""
        ...

    async def bind_family(self, code_hash: str, session_id: str) -> bool:
        """Record the family the code's one use created. True when a replay came in
        meanwhile: the caller revokes that family at once."""
        ...


class ConsentRepository(Protocol):
    async def granted(self, user_id: str, client_id: str) -> frozenset[str]: ...
    async def grant(self, user_id: str, client_id: str, scope: frozenset[str], *,
                    now: datetime) -> None: ...
    async def revoke(self, user_id: str, client_id: str) -> bool: ...


class GrantRepository(Protocol):
    async def link(self, link: GrantLink) -> None: ...
    async def get(self, session_id: str) -> GrantLink | None: ...
    async def families_of_client(self, client_id: str) -> list[str]: ...
    async def for_user(self, user_id: str) -> list[GrantLink]: ...
