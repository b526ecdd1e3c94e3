"""Mail: the server's outgoing mail, through SMTP, from a durable queue.

No web framework here (the server's core). Module map:

- ``address``  the one rule for email lookups that ignore case (``fold_email``)
- ``message``  the mails (text/plain + text/html, the token alone on a line and in a
               link ``<origin>/verify-email|reset-password?token=<token>``)
- ``smtp``     ``SmtpTarget.parse(JWTAUTH_SMTP_URL)`` and ``SmtpMailer`` (aiosmtplib;
               STARTTLS when offered, required with credentials; certificates always
               verified, ``JWTAUTH_SMTP_CA_FILE`` for a private CA)
- ``outbox``   ``Outbox.enqueue`` (inside the caller's transaction) and
               ``deliver_due`` (one pass of the background job: claim, send, retry with
               back-off, give up audited; the token is erased once the mail is out)

Storage: ``store.outbox`` on table ``mail_outbox`` (``store.account_tables``).

Phase 2 wires: a ``Sealer(kek, SealPurpose.MAIL_TOKEN)`` and an ``Outbox`` in the
composition root; a ``background.py`` job calling ``deliver_due`` every few seconds
(and ``OutboxStore.prune`` with ``JWTAUTH_MAIL_RETENTION`` in maintenance) when
``AccountSettings.mail_configured``; without ``JWTAUTH_SMTP_URL`` the mail routes answer
503 ``unavailable`` (``DeliveryPolicy.from_settings`` raises it).
"""

from .address import fold_email
from .message import MailKind
from .outbox import DeliveryPolicy, DeliveryReport, Outbox, deliver_due
from .smtp import Mailer, MailError, MailPermanentError, MailTemporaryError, SmtpMailer, SmtpTarget

__all__ = [
    "DeliveryPolicy",
    "DeliveryReport",
    "MailError",
    "MailKind",
    "MailPermanentError",
    "MailTemporaryError",
    "Mailer",
    "Outbox",
    "SmtpMailer",
    "SmtpTarget",
    "deliver_due",
    "fold_email",
]
