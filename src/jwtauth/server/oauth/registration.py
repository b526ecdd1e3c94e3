"""Client registration and management: the admin API and CLI (``trusted``), and RFC 7591
dynamic registration when JWTAUTH_OAUTH_DYNAMIC_REGISTRATION is on.

A confidential client's secret is returned once, by ``register``, and stored as a hash.
Deleting a client revokes every token issued to it: its families (their refresh and
access tokens) and its client_credentials tokens, before its rows go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...errors import InvalidInput, NotFound
from .client_auth import ClientDirectory
from .clients import (
    ClientMetadata,
    hash_client_secret,
    new_client_id,
    new_client_secret,
    update_metadata,
    validate_metadata,
)
from .config import OAuthConfig
from .errors import InvalidClientMetadataError
from .ports import (
    AccessTokenRevoker,
    ClientRepository,
    GrantRepository,
    SessionFamilies,
    StoredClient,
)


@dataclass(frozen=True, slots=True)
class Registered:
    metadata: ClientMetadata
    client_secret: str | None
    issued_at: datetime

    def body(self) -> dict[str, Any]:
        """The 201 body: the metadata, ``client_id`` and (once) ``client_secret``."""
        data = self.metadata.public()
        data["client_id_issued_at"] = int(self.issued_at.timestamp())
        if self.client_secret is not None:
            data["client_secret"] = self.client_secret
            data["client_secret_expires_at"] = 0  # RFC 7591 3.2.1: 0 = never
        return data


class ClientRegistry:
    def __init__(self, config: OAuthConfig, repository: ClientRepository,
                 directory: ClientDirectory, grants: GrantRepository,
                 families: SessionFamilies, revoker: AccessTokenRevoker,
                 now: Callable[[], datetime]) -> None:
        self.config = config
        self.repository = repository
        self.directory = directory
        self.grants = grants
        self.families = families
        self.revoker = revoker
        self.now = now

    def _rules(self, trusted: bool) -> dict[str, Any]:
        return {"trusted": trusted, "allow_loopback": self.config.allow_loopback,
                "id_token_algs": self.config.id_token_algs}

    async def register(self, data: Mapping[str, Any], *, trusted: bool) -> Registered:
        """``trusted``: an admin (errors are this contract's 422 ``InvalidInput``);
        otherwise RFC 7591 (errors stay ``invalid_client_metadata`` / ``..._redirect_uri``)."""
        client_id = new_client_id()
        try:
            metadata = validate_metadata(data, client_id=client_id, **self._rules(trusted))
        except InvalidClientMetadataError as exc:
            if trusted:
                raise InvalidInput(exc.message, field=exc.field) from exc
            raise
        secret = None if metadata.is_public else new_client_secret()
        now = self.now()
        await self.repository.add(StoredClient(
            metadata, hash_client_secret(secret) if secret else None, now
        ), now=now)
        return Registered(metadata, secret, now)

    async def get(self, client_id: str) -> ClientMetadata:
        stored = await self.repository.get(client_id)
        if stored is None:
            raise NotFound("No such client.")
        return stored.metadata

    async def update(self, client_id: str, changes: Mapping[str, Any]) -> ClientMetadata:
        current = await self.get(client_id)
        if "token_endpoint_auth_method" in changes and (
            changes["token_endpoint_auth_method"] != current.token_endpoint_auth_method
        ):
            # A public client has no secret to keep, a confidential one no way to get one.
            raise InvalidInput("token_endpoint_auth_method cannot change; register anew.",
                               field="token_endpoint_auth_method")
        try:
            metadata = update_metadata(current, changes, **self._rules(True))
        except InvalidClientMetadataError as exc:
            raise InvalidInput(exc.message, field=exc.field) from exc
        if not await self.repository.replace(metadata, now=self.now()):
            raise NotFound("No such client.")
        self.directory.forget(client_id)
        return metadata

    async def delete(self, client_id: str) -> None:
        await self.get(client_id)
        families = await self.grants.families_of_client(client_id)
        await self.families.revoke(families, now=self.now())
        await self.revoker.revoke_client(client_id)
        self.directory.forget(client_id)
        if not await self.repository.delete(client_id):
            raise NotFound("No such client.")
