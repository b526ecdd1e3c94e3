"""The audit trail: every security event, stored and logged (no web framework here).

Each event is one row in ``audit_events`` (read by ``GET /admin/audit`` and ``jwtauth
audit tail``) and one structured log line on the ``jwtauth.audit`` logger, with the same
fields as ``extra``. Events never carry a token, a password or a hash: the fields are
closed (ids, names, the client's address and user agent) and ``detail`` holds only the
few values each call site passes.

Where the event is a state change that matters (refresh-token reuse, logout, revocation,
password change, role change, user deletion), the service hands the event to the store,
which writes it in the same transaction as the change: there is no revocation without
its record and no record of one that rolled back. The other events (logins, failures,
registration, key rotation) are written right after, in their own transaction, by
``Auditor.record``; if that write fails, the failure is logged and swallowed, so a broken
audit table never turns a successful login into a 500. The log line goes out either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypedDict, Unpack

log = logging.getLogger("jwtauth.server.audit")


class AuditEventName(StrEnum):
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_RATE_LIMITED = "login_rate_limited"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - a name; the family is revoked
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    SESSION_ENDED = "session_ended"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    PASSWORD_CHANGE_FAILED = "password_change_failed"  # noqa: S105 - wrong current password
    ROLES_CHANGED = "roles_changed"
    USER_DELETED = "user_deleted"
    USER_REGISTERED = "user_registered"
    KEY_ROTATED = "key_rotated"
    # Issue 11: mail, one-time tokens, second factors, passkeys, disabled users, throttle.
    MAIL_SENT = "mail_sent"
    MAIL_FAILED = "mail_failed"
    EMAIL_VERIFY_REQUESTED = "email_verify_requested"
    EMAIL_VERIFIED = "email_verified"
    PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 - an event name
    PASSWORD_RESET_THROTTLED = "password_reset_throttled"  # noqa: S105 - an event name
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    TOTP_ENROLMENT_STARTED = "totp_enrolment_started"
    TOTP_ENABLED = "totp_enabled"
    TOTP_DISABLED = "totp_disabled"
    TOTP_REPLAY_REFUSED = "totp_replay_refused"
    MFA_REQUIRED = "mfa_required"
    MFA_SUCCEEDED = "mfa_succeeded"
    MFA_FAILED = "mfa_failed"
    RECOVERY_CODE_USED = "recovery_code_used"
    PASSKEY_REGISTERED = "passkey_registered"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_LOGIN_FAILED = "passkey_login_failed"
    PASSKEY_COUNTER_REGRESSED = "passkey_counter_regressed"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    ACCOUNT_THROTTLED = "account_throttled"


# Events an operator should notice at WARNING; the rest are INFO.
_WARNINGS = frozenset({
    AuditEventName.REFRESH_TOKEN_REUSED, AuditEventName.LOGIN_RATE_LIMITED,
    AuditEventName.MAIL_FAILED, AuditEventName.TOTP_REPLAY_REFUSED,
    AuditEventName.PASSKEY_COUNTER_REGRESSED, AuditEventName.ACCOUNT_THROTTLED,
})


class Client(Protocol):
    """Who is on the other end (``service.ClientInfo`` satisfies it)."""

    @property
    def address(self) -> str: ...

    @property
    def user_agent(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security event. ``user_*`` is the account it concerns, ``actor_id`` the
    admin who acted on it (None when the user acted, or for the CLI and automatic
    key rotation). ``id`` is set once stored."""

    event: AuditEventName
    created_at: datetime
    user_id: str | None = None
    username: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    actor_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def about(self, *, user_id: str | None, username: str | None,
              session_id: str | None) -> AuditEvent:
        """This event, attributed to a session the store found (refresh-token reuse)."""
        return replace(self, user_id=user_id, username=username, session_id=session_id)

    def fields(self) -> dict[str, Any]:
        """The public fields: the log line's ``extra`` and the HTTP/CLI views."""
        return {
            "audit_id": self.id,
            "event": self.event.value,
            "created_at": self.created_at.isoformat(),
            "user_id": self.user_id,
            "username": self.username,
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "session_id": self.session_id,
            "actor_id": self.actor_id,
            "detail": dict(self.detail),
        }


class AuditWriteError(Exception):
    """The audit store could not write an event (its cause is chained)."""


class AuditSink(Protocol):
    async def add(self, event: AuditEvent) -> AuditEvent:
        """Store ``event`` in its own transaction; the stored copy has its ``id``.
        Raises ``AuditWriteError``."""
        ...


class MemoryAuditSink:
    """Keeps events in a list: for unit tests of the core."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def add(self, event: AuditEvent) -> AuditEvent:
        stored = replace(event, id=len(self.events) + 1)
        self.events.append(stored)
        return stored


class EventFields(TypedDict, total=False):
    """What a call site may say about an event; everything else is set by ``Auditor``."""

    user_id: str | None
    username: str | None
    session_id: str | None
    actor_id: str | None
    client: Client | None
    detail: dict[str, Any] | None


class Auditor:
    def __init__(self, sink: AuditSink, *, now: Callable[[], datetime]) -> None:
        self._sink = sink
        self._now = now

    def event(self, name: AuditEventName, **fields: Unpack[EventFields]) -> AuditEvent:
        """Build an event (for the store to write inside a transaction); then ``emit``."""
        client = fields.get("client")
        username = fields.get("username")
        return AuditEvent(
            event=name,
            created_at=self._now(),
            user_id=fields.get("user_id"),
            username=username[:64] if username else username,
            client_ip=client.address[:64] if client else None,
            user_agent=(client.user_agent or "")[:512] or None if client is not None else None,
            session_id=fields.get("session_id"),
            actor_id=fields.get("actor_id"),
            detail=fields.get("detail") or {},
        )

    def emit(self, event: AuditEvent) -> None:
        """The structured log line of an event already written (or failed to write)."""
        level = logging.WARNING if event.event in _WARNINGS else logging.INFO
        log.log(level, "audit %s", event.event.value, extra=event.fields())

    async def record(self, name: AuditEventName, **fields: Unpack[EventFields]) -> AuditEvent:
        """Write an event in its own transaction and log it. A failed write is logged
        at ERROR and not raised (see the module docstring)."""
        event = self.event(name, **fields)
        try:
            event = await self._sink.add(event)
        except AuditWriteError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "unknown"
            log.error("audit write failed (%s); event logged only", cause, extra=event.fields())
        self.emit(event)
        return event


__all__ = [
    "AuditEvent",
    "AuditEventName",
    "AuditSink",
    "AuditWriteError",
    "Auditor",
    "Client",
    "EventFields",
    "MemoryAuditSink",
]
