"""Client authentication at the token, introspection and revocation endpoints
(RFC 6749 section 2.3): ``client_secret_basic``, ``client_secret_post`` and ``none``.

A client uses exactly the method it registered, and one method per request (2.3: "MUST
NOT use more than one"). Every failure is the same ``invalid_client``; an unknown client
costs the same hash and comparison as a wrong secret.

``ClientDirectory`` keeps clients in memory for a short time, so that introspection of a
live token needs no database round trip; deletions reach other instances within the TTL
(the deleted client's tokens die at once through the revocation list regardless).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from urllib.parse import unquote_plus

from .clients import secret_matches
from .errors import InvalidClientError, InvalidRequestError
from .ports import ClientRepository, StoredClient


class ClientDirectory:
    def __init__(self, repository: ClientRepository, *, ttl: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, StoredClient | None]] = {}

    async def get(self, client_id: str) -> StoredClient | None:
        now = self._monotonic()
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        client = await self.repository.get(client_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[client_id] = (now + self._ttl, client)
        return client

    def forget(self, client_id: str) -> None:
        """Call on an update or deletion (here, or seen in the revocation log)."""
        self._cache.pop(client_id, None)


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise InvalidClientError("Unsupported Authorization scheme.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClientError("Malformed Basic credentials.") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClientError("Malformed Basic credentials.")
    # RFC 6749 2.3.1: both parts are form-urlencoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(
    directory: ClientDirectory, *, authorization: str | None, form: Mapping[str, str]
) -> StoredClient:
    """The client a request authenticates as, or ``InvalidClientError``."""
    form_secret = form.get("client_secret")
    form_id = form.get("client_id")
    if authorization:
        if form_secret is not None:
            raise InvalidRequestError("Use one client authentication method, not two.")
        client_id, secret = _basic(authorization)
        if form_id is not None and form_id != client_id:
            raise InvalidClientError("client_id does not match the credentials.")
        method, presented = "client_secret_basic", secret
    elif form_secret is not None:
        if not form_id:
            raise InvalidClientError("client_id is required.")
        client_id, method, presented = form_id, "client_secret_post", form_secret
    elif form_id:
        client_id, method, presented = form_id, "none", ""
    else:
        raise InvalidClientError("Client authentication is required.")
    stored = await directory.get(client_id) if len(client_id) <= 64 else None
    registered = stored.metadata.token_endpoint_auth_method if stored else None
    if method == "none":
        if stored is None or registered != "none":
            raise InvalidClientError()
        return stored
    ok = secret_matches(presented, stored.secret_hash if stored else None)
    if stored is None or not ok or registered != method:
        raise InvalidClientError()
    return stored
