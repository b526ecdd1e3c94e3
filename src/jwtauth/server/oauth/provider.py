"""``OAuthProvider``: the endpoints of the core, built from their collaborators in one
place. The web layer calls these and nothing else; the wiring phase builds one per
server from Settings (the composition root)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .authorize import AuthorizationEndpoint
from .client_auth import ClientDirectory
from .config import OAuthConfig
from .end_session import EndSessionEndpoint
from .introspection import TokenInspection
from .metadata import discovery_document
from .minting import TokenMinter
from .ports import (
    AccessTokenRevoker,
    AccessTokenVerifier,
    ClientRepository,
    CodeRepository,
    ConsentRepository,
    GrantRepository,
    Keys,
    SessionFamilies,
    Users,
)
from .registration import ClientRegistry
from .token_endpoint import TokenEndpoint
from .userinfo import UserInfo


@dataclass(frozen=True, slots=True)
class Collaborators:
    clients: ClientRepository
    codes: CodeRepository
    consents: ConsentRepository
    grants: GrantRepository
    families: SessionFamilies
    users: Users
    keys: Keys
    verifier: AccessTokenVerifier
    revoker: AccessTokenRevoker


class OAuthProvider:
    def __init__(self, config: OAuthConfig, parts: Collaborators, *,
                 clock: Callable[[], float] = time.time, client_cache_ttl: float = 5.0) -> None:
        self.config = config
        self.parts = parts
        self.clock = clock
        self.clients = ClientDirectory(parts.clients, ttl=client_cache_ttl)
        self.minter = TokenMinter(config, parts.keys, clock)
        self.authorization = AuthorizationEndpoint(
            config, self.clients, parts.codes, parts.consents, parts.keys, self.now
        )
        self.token = TokenEndpoint(
            config, self.clients, parts.codes, parts.grants, parts.families, parts.users,
            self.minter, self.now,
        )
        self.inspection = TokenInspection(
            self.clients, parts.verifier, parts.families, parts.grants, parts.revoker, self.now
        )
        self.userinfo = UserInfo(config, parts.verifier, parts.users)
        self.end_session = EndSessionEndpoint(config, self.clients, parts.keys)
        self.registry = ClientRegistry(
            config, parts.clients, self.clients, parts.grants, parts.families, parts.revoker,
            self.now,
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def discovery(self, *, extra_scopes: tuple[str, ...] = ()) -> dict[str, Any]:
        return discovery_document(self.config, extra_scopes=extra_scopes)
