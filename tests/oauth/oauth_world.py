"""The OAuth core over a real database, with the server's real stores behind its
Protocols: users from ``UserStore``, refresh families from ``SessionStore`` (the existing
families, rotated and revoked by the same code as /auth/refresh), the OAuth store of
store/oauth*.py, freshly generated ES256 and RS256 keys.

The adapters here are the smallest honest versions of what the wiring phase will build
(they are test code). The one stand-in is the access token verifier: the library's
``Verifier`` still requires ``sid``, which client_credentials tokens do not have, so
``TestVerifier`` checks signature, typ, iss, exp and the revocation list itself with
joserfc, an implementation independent of the one that signed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from jwtauth import Claims, InvalidToken
from jwtauth.keys import Keyring, KeyState, SigningKey
from jwtauth.revocation import RevocationKind, RevocationList
from jwtauth.server.audit import AuditEventName, Auditor, MemoryAuditSink
from jwtauth.server.keys import generate_key
from jwtauth.server.oauth import Collaborators, OAuthConfig, OAuthProvider
from jwtauth.server.oauth.ports import NewFamily, Rotation, RotationOutcome, UserProfile
from jwtauth.server.sessions import hash_refresh_token, new_refresh_token
from jwtauth.server.sessions.revocation import OneSession, remember_in
from jwtauth.server.sessions.revocation import Revoker as SessionRevoker
from jwtauth.server.sessions.rotation import Grace, Invalid, Reused, Rotated, Rotator
from jwtauth.server.store import Database, create_database
from jwtauth.server.store.oauth import CodeStore, ConsentStore, GrantStore, OAuthClientStore
from jwtauth.server.store.sessions import SessionStore
from jwtauth.server.store.users import UserStore

from conftest import Backend, Clock

ISSUER = "https://jwtauth.test"
AUDIENCE = "jwtauth"
REVOCATION_TTL = 3600


class Keys:
    """ES256 signs access tokens (the server's default), RS256 ID tokens by default."""

    def __init__(self) -> None:
        self.default = generate_key("ES256")
        self.rsa = generate_key("RS256")
        self.keyring = Keyring([self.default, SigningKey(
            kid=self.rsa.kid, alg="RS256", jwk=self.rsa.jwk, state=KeyState.NEXT,
        )])

    def access_token_key(self) -> SigningKey:
        return self.default

    def id_token_key(self, alg: str) -> SigningKey | None:
        return {"ES256": self.default, "RS256": self.rsa}.get(alg)

    def verification_key(self, kid: str) -> SigningKey | None:
        return self.keyring.get(kid)

    @property
    def jwks(self) -> dict[str, Any]:
        return self.keyring.jwks


class TestVerifier:
    __test__ = False

    def __init__(self, keys: Keys, revocations: RevocationList, clock: Clock) -> None:
        self.keys = KeySet.import_key_set(keys.jwks)
        self.revocations = revocations
        self.revoked_jtis: set[str] = set()
        self.clock = clock

    def verify_sync(self, token: str) -> Claims:
        try:
            decoded = jwt.decode(token, self.keys, algorithms=["ES256", "RS256"])
            jwt.JWTClaimsRegistry(
                now=int(self.clock()), leeway=30, iss={"essential": True, "value": ISSUER},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidToken(type(exc).__name__) from exc
        if decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("typ")
        raw = decoded.claims
        claims = Claims(raw["sub"], raw.get("sid", ""), raw["jti"], tuple(raw.get("roles", [])),
                        raw["iss"], raw["exp"], raw["iat"], raw.get("preferred_username"), raw)
        if self.revocations.is_revoked(claims) or claims.jti in self.revoked_jtis:
            raise InvalidToken("revoked")
        return claims


class Revoker:
    def __init__(self, verifier: TestVerifier, revocations: RevocationList) -> None:
        self.verifier = verifier
        self.revocations = revocations

    async def revoke_access_token(self, claims: Claims) -> None:
        self.verifier.revoked_jtis.add(claims.jti)

    async def revoke_client(self, client_id: str) -> None:
        self.revocations.add(RevocationKind.USER, client_id, time.time() + REVOCATION_TTL)


class Users:
    def __init__(self, store: UserStore) -> None:
        self.store = store
        self.calls = 0

    async def profile(self, user_id: str) -> UserProfile | None:
        self.calls += 1
        user = await self.store.by_id(user_id)
        if user is None:
            return None
        return UserProfile(user.id, user.username, tuple(user.roles), user.email,
                           email_verified=False)


class Families:
    """``SessionFamilies`` over the server's own sessions: ``SessionStore``, the
    ``Rotator`` that /auth/refresh uses and the one revocation unit of work."""

    def __init__(self, store: SessionStore, revocations: RevocationList, db: Database) -> None:
        self.store = store
        self.revocations = revocations
        self.db = db
        self.auditor = Auditor(MemoryAuditSink(), now=lambda: datetime.now(UTC))
        self.revoker = SessionRevoker(
            db, ttl=REVOCATION_TTL, clock=time.time, auditor=self.auditor,
            listeners=[remember_in(revocations)],
        )
        self.rotator = Rotator(store, self.revoker, ttl=7 * 86400, grace=0)

    async def create(self, *, user_id: str, client_id: str, refresh: bool,
                     now: datetime) -> NewFamily:
        token = new_refresh_token()
        session_id = await self.store.create(
            user_id=user_id, token_hash=hash_refresh_token(token), now=now, ttl=7 * 86400,
            absolute_ttl=30 * 86400, user_agent=f"oauth:{client_id}", client_ip=None,
        )
        return NewFamily(session_id, token if refresh else None, 7 * 86400 if refresh else None)

    async def rotate(self, refresh_token: str, *, now: datetime) -> Rotation:
        outcome = await self.rotator.rotate(
            refresh_token, new_refresh_token(), now=now,
            reuse_audit=self.auditor.event(AuditEventName.REFRESH_TOKEN_REUSED),
        )
        if isinstance(outcome, Rotated | Grace):
            kind = RotationOutcome.GRACE if isinstance(outcome, Grace) else RotationOutcome.ROTATED
            return Rotation(kind, outcome.session_id, outcome.user_id, outcome.token,
                            7 * 86400, outcome.username, tuple(outcome.roles))
        if isinstance(outcome, Reused):
            return Rotation(RotationOutcome.REUSED, outcome.session_id, outcome.user_id,
                            username=outcome.username)
        assert isinstance(outcome, Invalid)
        return Rotation(RotationOutcome.INVALID)

    async def family_of(self, refresh_token: str) -> str | None:
        found = await self.store.session_of_token(hash_refresh_token(refresh_token))
        return found[0] if found else None

    async def is_current(self, refresh_token: str, *, now: datetime) -> bool:
        import sqlalchemy as sa

        from jwtauth.server.store.tables import refresh_tokens, sessions

        query = (
            sa.select(refresh_tokens.c.token_hash)
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == hash_refresh_token(refresh_token),
                   refresh_tokens.c.used_at.is_(None), refresh_tokens.c.expires_at > now,
                   sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
        )
        async with self.db.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def revoke(self, session_ids: Sequence[str], *, now: datetime) -> None:
        for session_id in session_ids:
            ended = await self.revoker.end(
                OneSession(session_id), self.auditor.event(AuditEventName.LOGOUT)
            )
            if ended is None:  # already revoked: still forget its tokens here
                self.revocations.add(
                    RevocationKind.SESSION, session_id, time.time() + REVOCATION_TTL
                )


@dataclass
class World:
    db: Database
    provider: OAuthProvider
    clock: Clock
    keys: Keys
    users: Users
    user_store: UserStore
    families: Families
    revocations: RevocationList
    verifier: TestVerifier
    clients: OAuthClientStore
    codes: CodeStore
    consents: ConsentStore
    grants: GrantStore
    extra: dict[str, Any] = field(default_factory=dict)

    async def user(self, username: str = "alice") -> str:
        record = await self.user_store.create(
            username=username, password_hash="x", roles=["user"],
            email=f"{username}@example.test", now=self.provider.now(),
        )
        return record.id


def make_config(**overrides: Any) -> OAuthConfig:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "csrf_secret": b"k" * 32,
                              "server_alg": "ES256"}
    values.update(overrides)
    return OAuthConfig(**values)


async def open_database(backend: Backend, tmp_path: Path) -> Database:
    overrides = backend.overrides
    db = create_database(overrides["database_url"], schema=overrides.get("database_schema"))
    await db.upgrade()
    return db


async def build_world(db: Database, *, clock: Clock | None = None,
                      **config: Any) -> World:
    clock = clock or Clock()
    keys = Keys()
    revocations = RevocationList(clock)
    verifier = TestVerifier(keys, revocations, clock)
    user_store = UserStore(db)
    users = Users(user_store)
    families = Families(SessionStore(db), revocations, db)
    clients, codes = OAuthClientStore(db), CodeStore(db)
    consents, grants = ConsentStore(db), GrantStore(db)
    provider = OAuthProvider(make_config(**config), Collaborators(
        clients=clients, codes=codes, consents=consents, grants=grants, families=families,
        users=users, keys=keys, verifier=verifier, revoker=Revoker(verifier, revocations),
    ), clock=clock, client_cache_ttl=0)
    return World(db, provider, clock, keys, users, user_store, families, revocations, verifier,
                 clients, codes, consents, grants)


@pytest.fixture
async def world(backend: Backend, tmp_path: Path) -> AsyncIterator[World]:
    db = await open_database(backend, tmp_path)
    yield await build_world(db)
    await db.dispose()


@pytest.fixture
async def loopback_world(backend: Backend, tmp_path: Path) -> AsyncIterator[World]:
    db = await open_database(backend, tmp_path)
    yield await build_world(db, allow_loopback=True)
    await db.dispose()


# -- the flows, as a web layer would drive the core ---------------------------------------

WEB_REDIRECT = "https://rp.example.test/callback"
NATIVE_REDIRECT = "http://127.0.0.1/callback"


async def register_web(world: World, **metadata: Any) -> tuple[str, str]:
    """A confidential web client: (client_id, client_secret)."""
    data: dict[str, Any] = {
        "client_name": "Web app", "redirect_uris": [WEB_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": "api:read",
        "post_logout_redirect_uris": ["https://rp.example.test/bye"],
    }
    data.update(metadata)
    registered = await world.provider.registry.register(data, trusted=True)
    assert registered.client_secret is not None
    return registered.metadata.client_id, registered.client_secret


async def register_native(world: World, **metadata: Any) -> str:
    data: dict[str, Any] = {
        "client_name": "Native app", "application_type": "native",
        "redirect_uris": [NATIVE_REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    data.update(metadata)
    registered = await world.provider.registry.register(data, trusted=True)
    assert registered.client_secret is None
    return registered.metadata.client_id


def basic(client_id: str, secret: str) -> str:
    import base64
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def signin_for(world: World, user_id: str, session_id: str = "signin-0001") -> Any:
    from jwtauth.server.oauth.ports import SignIn

    return SignIn(user_id=user_id, session_id=session_id, auth_time=world.provider.now(),
                  amr=("pwd",), acr="aal1")


@dataclass
class Authorized:
    code: str | None
    params: dict[str, str]
    verifier: str
    redirect_uri: str


async def authorize(
    world: World, client_id: str, signin: Any, *, scope: str = "openid profile email",
    redirect_uri: str = WEB_REDIRECT, verifier: str | None = None, consent: bool = True,
    **extra: str,
) -> Authorized:
    """GET authorize, then the consent form if shown; the redirect's parameters."""
    import secrets
    from urllib.parse import parse_qsl, urlsplit

    from jwtauth.server.oauth import authorize as az
    from jwtauth.server.oauth.pkce import s256

    verifier = verifier or secrets.token_urlsafe(48)
    pairs = [("client_id", client_id), ("response_type", "code"), ("scope", scope),
             ("redirect_uri", redirect_uri), ("state", "st-42"), ("nonce", "n-42"),
             ("code_challenge", s256(verifier)), ("code_challenge_method", "S256"),
             *extra.items()]
    endpoint = world.provider.authorization
    request = await endpoint.parse(pairs)
    assert isinstance(request, az.AuthorizationRequest), request
    decision = await endpoint.decide(request, signin)
    if isinstance(decision, az.ShowConsent) and consent:
        decision = await endpoint.consent(request, signin, decision="allow",
                                          token=decision.consent_token)
    assert isinstance(decision, az.Redirect), decision
    params = dict(parse_qsl(urlsplit(decision.url).query))
    return Authorized(params.get("code"), params, verifier, redirect_uri)


async def exchange(world: World, client_id: str, secret: str | None, auth: Authorized,
                   **extra: str) -> dict[str, Any]:
    pairs = [("grant_type", "authorization_code"), ("code", auth.code or ""),
             ("redirect_uri", auth.redirect_uri), ("code_verifier", auth.verifier),
             *extra.items()]
    if secret is None:
        pairs.append(("client_id", client_id))
        return await world.provider.token.handle(pairs, authorization=None)
    return await world.provider.token.handle(pairs, authorization=basic(client_id, secret))


async def refresh(world: World, client_id: str, secret: str | None, token: str,
                  **extra: str) -> dict[str, Any]:
    pairs = [("grant_type", "refresh_token"), ("refresh_token", token), *extra.items()]
    if secret is None:
        pairs.append(("client_id", client_id))
        return await world.provider.token.handle(pairs, authorization=None)
    return await world.provider.token.handle(pairs, authorization=basic(client_id, secret))


async def introspect(world: World, client_id: str, secret: str, token: str) -> dict[str, Any]:
    return await world.provider.inspection.introspect(
        [("token", token)], authorization=basic(client_id, secret)
    )
