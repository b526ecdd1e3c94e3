"""The durable mail queue: a mail is a row first and an SMTP transaction later.

``Outbox.enqueue`` writes the row inside the caller's transaction (the one that creates
the one-time token), so a token is never mailed without being stored nor stored
without its mail. ``deliver_due`` (one pass of the background job) claims due rows,
renders each message, sends it and records the outcome; a process that dies mid-way
leaves its claims to expire, and any instance picks the rows up again (at-least-once:
a crash between the relay's 250 and the commit sends that mail twice).

What the queue holds, and for how long. A mail must carry its token, so the row holds
it until the mail is out: sealed with AES-GCM under the "mail-token" subkey of the
key-encryption key (``sealing.py``; the recipient and kind bound as associated data),
unsealed only where no KEK exists (PostgreSQL without one; the server warns). The
body is never stored: it is rendered from the token and a few values at send time.
Once the mail is delivered, abandoned or its token has expired, the token and the
values are erased from the row (``secret_sealed`` and ``params`` set to NULL); what
remains (kind, recipient, status, attempts, the SMTP code of the last error) is a
record until ``prune``. Log lines and audit events name the row id, kind, user id and
SMTP code: never the token, the body or the recipient's address.

Temporary failures (connection, TLS, 4xx, authentication) are retried with
exponential back-off (``retry_base`` doubling up to ``retry_max``); a 5xx answer,
``max_attempts`` attempts, or the token's expiry give up, with a ``mail_failed`` audit
event and a warning. A delivery is a ``mail_sent`` event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from ...errors import ConfigError
from ..audit import AuditEventName as Audit
from ..audit import Auditor
from ..sealing import Sealer
from ..store.outbox import FAILED, SENT, OutboxRow, OutboxStore, insert_message
from .message import MailKind, render
from .smtp import Mailer, MailPermanentError, MailTemporaryError

if TYPE_CHECKING:
    from ..account_settings import AccountSettings

log = logging.getLogger("jwtauth.server.mail")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    sender: str
    site: str
    max_attempts: int = 8
    retry_base: float = 30.0
    retry_max: float = 3600.0
    claim_ttl: float = 120.0

    @classmethod
    def from_settings(cls, settings: AccountSettings) -> DeliveryPolicy:
        if not settings.mail_from:
            from ...errors import Unavailable

            raise Unavailable("Mail is not configured on this server (JWTAUTH_SMTP_URL).")
        return cls(
            sender=settings.mail_from, site=settings.site_name,
            max_attempts=settings.mail_max_attempts, retry_base=settings.mail_retry_base,
            retry_max=settings.mail_retry_max, claim_ttl=settings.mail_claim_ttl,
        )

    def retry_delay(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``, after ``attempts`` failures."""
        return float(min(self.retry_max, self.retry_base * 2.0 ** max(0, attempts - 1)))


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _aad(kind: str, recipient: str) -> str:
    return f"{kind}:{recipient}"


class Outbox:
    def __init__(self, store: OutboxStore, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer

    async def enqueue(
        self, conn: AsyncConnection, *, kind: MailKind, user_id: str | None, recipient: str,
        username: str, token: str, origin: str, valid_for: int, now: datetime,
    ) -> int:
        """Queue a token mail inside the caller's transaction; returns the row id."""
        return await insert_message(
            conn, kind=kind.value, user_id=user_id, recipient=recipient,
            params={"username": username, "origin": origin, "valid_for": valid_for},
            secret_sealed=self.sealer.seal(_aad(kind.value, recipient), token), now=now,
            expires_at=now + timedelta(seconds=valid_for),
        )

    def message_for(self, row: OutboxRow, policy: DeliveryPolicy) -> EmailMessage:
        """The message of a claimed row, rendered now (raises ``ConfigError`` when its
        token cannot be unsealed)."""
        assert row.secret_sealed is not None
        token = self.sealer.open(_aad(row.kind, row.recipient), row.secret_sealed)
        params = row.params
        return render(
            MailKind(row.kind), token=token, origin=str(params["origin"]),
            sender=policy.sender, recipient=row.recipient, username=str(params["username"]),
            site=policy.site, valid_for=int(params["valid_for"]),
        )


async def deliver_due(
    outbox: Outbox, mailer: Mailer, policy: DeliveryPolicy, auditor: Auditor, *,
    now: Callable[[], datetime], batch: int = 20,
) -> DeliveryReport:
    """One pass: claim up to ``batch`` due mails and try each once. Safe to run at any
    number of instances at once (each row goes to one of them)."""
    report = DeliveryReport()
    started = now()
    claim_id = str(uuid.uuid4())
    rows = await outbox.store.claim(
        claim_id=claim_id, now=started,
        until=started + timedelta(seconds=policy.claim_ttl), limit=batch,
    )
    for row in rows:
        await _deliver_one(outbox, mailer, policy, auditor, row, now(), report)
    return report


async def _deliver_one(
    outbox: Outbox, mailer: Mailer, policy: DeliveryPolicy, auditor: Auditor,
    row: OutboxRow, moment: datetime, report: DeliveryReport,
) -> None:
    fields = {"mail_id": row.id, "kind": row.kind}
    if row.secret_sealed is None or moment >= row.expires_at:
        await _give_up(outbox, auditor, row, moment, "token expired before delivery", report)
        return
    try:
        message = outbox.message_for(row, policy)
    except ConfigError:
        await _give_up(outbox, auditor, row, moment, "token cannot be unsealed", report)
        return
    try:
        await mailer.send(message)
    except MailPermanentError as exc:
        await _give_up(outbox, auditor, row, moment, str(exc), report)
        return
    except MailTemporaryError as exc:
        attempts = row.attempts + 1
        retry_at = moment + timedelta(seconds=policy.retry_delay(attempts))
        if attempts >= policy.max_attempts or retry_at >= row.expires_at:
            await _give_up(outbox, auditor, row, moment, str(exc), report)
            return
        if await outbox.store.retry_later(row, at=retry_at, error=str(exc)):
            report.retrying.append(row.id)
        log.info("mail %d not delivered yet (%s); retry in %.0f s", row.id, exc,
                 policy.retry_delay(attempts), extra=fields)
        return
    event = auditor.event(
        Audit.MAIL_SENT, user_id=row.user_id, detail={**fields, "attempts": row.attempts + 1}
    )
    if await outbox.store.finish(row, status=SENT, now=moment, error=None, audit=event):
        auditor.emit(event)
        report.sent.append(row.id)


async def _give_up(
    outbox: Outbox, auditor: Auditor, row: OutboxRow, moment: datetime, reason: str,
    report: DeliveryReport,
) -> None:
    event = auditor.event(
        Audit.MAIL_FAILED, user_id=row.user_id,
        detail={"mail_id": row.id, "kind": row.kind, "attempts": row.attempts + 1,
                "reason": reason[:200]},
    )
    if await outbox.store.finish(row, status=FAILED, now=moment, error=reason, audit=event):
        auditor.emit(event)
        report.failed.append(row.id)
