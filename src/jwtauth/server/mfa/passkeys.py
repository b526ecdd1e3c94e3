"""Passkeys (WebAuthn Level 3) with py_webauthn: registration while signed in, sign-in
without a user name (discoverable credentials), user verification required, sign
counters checked.

py_webauthn builds the options and verifies attestations and assertions (signature,
challenge, origin, RP ID hash, UP/UV flags); this module adds what it leaves to the
relying party: challenges stored server-side (single use, short-lived, usable at any
instance: ``store.passkeys``), credentials bound to users, disabled users refused, and
the sign counter. The counter is checked here rather than by py_webauthn so that a
regression, which is evidence of a cloned authenticator (WebAuthn section 6.1.1), is
told apart from other failures and audited (``passkey_counter_regressed``); it is
checked only after the signature verified, so forged data cannot raise that alarm.

The RP ID is the host of the server's own origin (``RelyingParty.for_origin``).

Phase 2 calls, from the routes of API.md:

- ``POST /auth/webauthn/register/options``: ``registration_options(rp, user_id,
  username)`` -> ``PublicKeyCredentialCreationOptionsJSON`` as is;
- ``POST /auth/webauthn/register``: ``register(rp, user_id, body)`` -> ``PasskeyRecord``
  (201 ``{"id","created_at"}``); ``InvalidInput`` (422);
- ``POST /auth/webauthn/login/options``: ``login_options(rp, username=...)`` ->
  ``{"challenge_id", "publicKey"}``;
- ``POST /auth/webauthn/login``: ``authenticate(rp, challenge_id, credential)`` ->
  ``PasskeyLogin`` (``amr``/``acr`` for the tokens); ``InvalidCredentials`` (401);
- the page: ``list_for(user_id)`` and ``remove(user_id, credential_id)``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict, parse_authenticator_data
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidAuthenticatorDataStructure,
    InvalidCBORData,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...errors import InvalidCredentials, InvalidInput, NotFound
from ..audit import AuditEventName as Audit
from ..audit import Auditor, Client
from ..store import Database
from ..store import passkeys as q
from ..store.audit import insert_event
from .assurance import Acr, Factor, acr_for, amr_for

log = logging.getLogger("jwtauth.server.passkeys")

_MAX_BODY_FIELD = 64 * 1024  # a credential's fields are small; refuse anything huge
_BAD_INPUT = (
    InvalidRegistrationResponse, InvalidAuthenticationResponse, InvalidJSONStructure,
    InvalidCBORData, InvalidAuthenticatorDataStructure, ValueError, KeyError, TypeError,
)


@dataclass(frozen=True, slots=True)
class RelyingParty:
    id: str
    origin: str
    name: str

    @classmethod
    def for_origin(cls, origin: str, name: str) -> RelyingParty:
        """RP ID = the origin's host (API.md). Browsers refuse an IP address as RP ID:
        use ``http://localhost:PORT`` in development."""
        host = urlsplit(origin).hostname
        if not host:
            raise ValueError(f"{origin!r} is not an origin")
        return cls(host, origin.rstrip("/"), name)


@dataclass(frozen=True, slots=True)
class PasskeyLogin:
    user_id: str
    credential_id: str
    amr: list[str]
    acr: Acr


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _client_challenge(credential: dict[str, Any]) -> str:
    """The challenge inside clientDataJSON, to find the stored one (a registration
    body carries no challenge id: it is ``PublicKeyCredential.toJSON()`` as is)."""
    raw = credential["response"]["clientDataJSON"]
    if not isinstance(raw, str) or len(raw) > _MAX_BODY_FIELD:
        raise ValueError("clientDataJSON")
    client_data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    challenge = client_data["challenge"]
    if not isinstance(challenge, str) or len(challenge) > 128:
        raise ValueError("challenge")
    return challenge


class PasskeyService:
    def __init__(
        self, db: Database, auditor: Auditor, *, now: Callable[[], datetime],
        challenge_ttl: int = 300,
    ) -> None:
        self._db = db
        self._audit = auditor
        self._now = now
        self._ttl = challenge_ttl

    async def registration_options(
        self, rp: RelyingParty, user_id: str, username: str
    ) -> dict[str, Any]:
        async with self._db.begin() as conn:
            existing = await q.of_user(conn, user_id)
            options = generate_registration_options(
                rp_id=rp.id, rp_name=rp.name, user_name=username, user_id=user_id.encode(),
                timeout=self._ttl * 1000,
                attestation=AttestationConveyancePreference.NONE,
                authenticator_selection=AuthenticatorSelectionCriteria(
                    resident_key=ResidentKeyRequirement.REQUIRED,
                    user_verification=UserVerificationRequirement.REQUIRED,
                ),
                exclude_credentials=[
                    PublicKeyCredentialDescriptor(id=_unb64url(c.id)) for c in existing
                ],
            )
            await q.add_challenge(
                conn, purpose="register", challenge=_b64url(options.challenge),
                user_id=user_id, now=self._now(), ttl=self._ttl,
            )
        return dict(options_to_json_dict(options))

    async def register(
        self, rp: RelyingParty, user_id: str, credential: dict[str, Any], *,
        client: Client | None = None,
    ) -> q.PasskeyRecord:
        now = self._now()
        try:
            async with self._db.begin() as conn:
                taken = await q.take_challenge(
                    conn, purpose="register", challenge=_client_challenge(credential),
                    user_id=user_id, now=now,
                )
                if taken is None:
                    raise InvalidInput("The registration challenge is unknown, used or "
                                       "expired; start again.")
                verified = verify_registration_response(
                    credential=credential, expected_challenge=_unb64url(taken[0]),
                    expected_rp_id=rp.id, expected_origin=rp.origin,
                    require_user_verification=True,
                )
                transports = credential.get("response", {}).get("transports") or []
                record = q.PasskeyRecord(
                    id=_b64url(verified.credential_id), user_id=user_id,
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    transports=[str(t) for t in transports][:8] if isinstance(
                        transports, list) else [],
                    aaguid=verified.aaguid, backed_up=verified.credential_backed_up,
                    created_at=now, last_used_at=None,
                )
                if await q.credential(conn, record.id) is not None:
                    raise InvalidInput("This passkey is already registered.")
                await q.insert_credential(conn, record)
                event = self._audit.event(Audit.PASSKEY_REGISTERED, user_id=user_id,
                                          client=client, detail={"credential": record.id[:16]})
                await insert_event(conn, event)
        except _BAD_INPUT as exc:
            log.info("passkey registration refused: %s", type(exc).__name__)
            raise InvalidInput("The passkey could not be registered.") from exc
        self._audit.emit(event)
        return record

    async def login_options(
        self, rp: RelyingParty, *, username: str | None = None
    ) -> dict[str, Any]:
        """``{"challenge_id", "publicKey"}``. With a user name, ``allowCredentials``
        lists that user's passkeys; an unknown name gets the empty list, like a
        discoverable sign-in."""
        async with self._db.begin() as conn:
            user_id = await q.user_by_name(conn, username) if username else None
            allowed = await q.of_user(conn, user_id) if user_id else []
            options = generate_authentication_options(
                rp_id=rp.id, timeout=self._ttl * 1000,
                user_verification=UserVerificationRequirement.REQUIRED,
                allow_credentials=[
                    PublicKeyCredentialDescriptor(id=_unb64url(c.id)) for c in allowed
                ],
            )
            challenge_id = await q.add_challenge(
                conn, purpose="login", challenge=_b64url(options.challenge), user_id=user_id,
                now=self._now(), ttl=self._ttl,
            )
        return {"challenge_id": challenge_id, "publicKey": dict(options_to_json_dict(options))}

    async def authenticate(
        self, rp: RelyingParty, challenge_id: str, credential: dict[str, Any], *,
        client: Client | None = None,
    ) -> PasskeyLogin:
        """Raises ``InvalidCredentials`` for every refusal (the audit says which)."""
        now = self._now()
        async with self._db.begin() as conn:
            # Spent whatever follows: a challenge is never tried twice.
            taken = await q.take_challenge(conn, purpose="login", challenge_id=challenge_id,
                                           now=now)
        if taken is None:
            await self._refuse(None, "challenge", client)
        challenge, bound_user = taken
        credential_id = credential.get("id") if isinstance(credential, dict) else None
        if not isinstance(credential_id, str) or len(credential_id) > 1400:
            await self._refuse(None, "credential", client)
        async with self._db.connect() as conn:
            stored = await q.credential(conn, credential_id)
        if stored is None:
            await self._refuse(None, "unknown_credential", client)
        if stored.user_disabled:
            await self._refuse(stored.user_id, "disabled", client)
        if bound_user is not None and bound_user != stored.user_id:
            await self._refuse(stored.user_id, "other_user", client)
        handle = credential.get("response", {}).get("userHandle")
        if handle is not None and _unb64url(str(handle)) != stored.user_id.encode():
            await self._refuse(stored.user_id, "user_handle", client)
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=_unb64url(challenge),
                expected_rp_id=rp.id, expected_origin=rp.origin,
                credential_public_key=stored.public_key, credential_current_sign_count=0,
                require_user_verification=True,
            )
        except _BAD_INPUT as exc:
            log.info("passkey assertion refused: %s", type(exc).__name__)
            reason = "user_not_verified" if _uv_missing(credential) else "assertion"
            await self._refuse(stored.user_id, reason, client)
        new_count = verified.new_sign_count
        async with self._db.begin() as conn:
            moved = await q.advance_counter(conn, stored.id, new_count, now)
            if moved:
                factors = [Factor.PASSKEY_VERIFIED]
                event = self._audit.event(
                    Audit.LOGIN_SUCCEEDED, user_id=stored.user_id, client=client,
                    detail={"method": "passkey", "amr": amr_for(factors)},
                )
                await insert_event(conn, event)
        if not moved:
            await self._audit.record(
                Audit.PASSKEY_COUNTER_REGRESSED, user_id=stored.user_id, client=client,
                detail={"stored": stored.sign_count, "presented": new_count},
            )
            await self._refuse(stored.user_id, "sign_count", client)
        self._audit.emit(event)
        return PasskeyLogin(stored.user_id, stored.id, amr_for(factors), acr_for(factors))

    async def _refuse(
        self, user_id: str | None, reason: str, client: Client | None
    ) -> NoReturn:
        await self._audit.record(Audit.PASSKEY_LOGIN_FAILED, user_id=user_id, client=client,
                                 detail={"reason": reason})
        raise InvalidCredentials("The passkey was not accepted.")

    async def list_for(self, user_id: str) -> list[q.PasskeyRecord]:
        async with self._db.connect() as conn:
            return await q.of_user(conn, user_id)

    async def remove(self, user_id: str, credential_id: str, *, client: Client | None = None
                     ) -> None:
        async with self._db.begin() as conn:
            if not await q.remove(conn, user_id, credential_id):
                raise NotFound("No such passkey.")
            event = self._audit.event(Audit.PASSKEY_REMOVED, user_id=user_id, client=client,
                                      detail={"credential": credential_id[:16]})
            await insert_event(conn, event)
        self._audit.emit(event)

    async def prune(self, before: datetime) -> int:
        async with self._db.begin() as conn:
            return await q.prune_challenges(conn, before)


def _unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _uv_missing(credential: dict[str, Any]) -> bool:
    try:
        data = parse_authenticator_data(_unb64url(credential["response"]["authenticatorData"]))
    except _BAD_INPUT:
        return False
    return not data.flags.uv
