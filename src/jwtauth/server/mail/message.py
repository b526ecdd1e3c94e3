"""The mails the server sends, built with the standard library's ``EmailMessage``.

Each mail is text/plain plus text/html (multipart/alternative). The plain part carries
the token twice, as API.md says: alone on a line (to paste) and in a link to the
server's own origin (``<origin><path>?token=<token>``). The HTML part holds the same
link; every value in it is escaped. Nothing here logs anything.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from urllib.parse import quote


class MailKind(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a mail kind


# The page paths the links open (phase 2 serves the sign-in page there too; it posts
# the token to /auth/email/verify or /auth/password/reset).
LINK_PATHS = {
    MailKind.VERIFY_EMAIL: "/verify-email",
    MailKind.PASSWORD_RESET: "/reset-password",
}


@dataclass(frozen=True, slots=True)
class _Wording:
    subject: str
    intro: str
    action: str
    validity: str
    closing: str


_WORDING = {
    MailKind.VERIFY_EMAIL: _Wording(
        subject="Confirm your email address for {site}",
        intro="Someone (we hope you) asked to confirm this address for the account "
        "{username} at {site}.",
        action="Confirm the address",
        validity="The code works once and for {hours} hours.",
        closing="If you did not ask for this, ignore this mail.",
    ),
    MailKind.PASSWORD_RESET: _Wording(
        subject="Reset your password for {site}",
        intro="Someone (we hope you) asked to reset the password of the account "
        "{username} at {site}.",
        action="Choose a new password",
        validity="The code works once and for {minutes} minutes. Using it signs the "
        "account out everywhere.",
        closing="If you did not ask for this, ignore this mail: your password stays as it is.",
    ),
}


def token_link(origin: str, kind: MailKind, token: str) -> str:
    return f"{origin.rstrip('/')}{LINK_PATHS[kind]}?token={quote(token, safe='')}"


def render(
    kind: MailKind, *, token: str, origin: str, sender: str, recipient: str,
    username: str, site: str, valid_for: int,
) -> EmailMessage:
    """The whole message, headers included. ``valid_for``: the token's life in seconds."""
    words = _WORDING[kind]
    values = {
        "site": site, "username": username,
        "hours": max(1, valid_for // 3600), "minutes": max(1, valid_for // 60),
    }
    subject, intro, validity = (
        text.format(**values) for text in (words.subject, words.intro, words.validity)
    )
    link = token_link(origin, kind, token)
    plain = (
        f"Hello {username},\n\n{intro}\n\n{words.action}: open this link\n\n{link}\n\n"
        f"or enter this code on the page:\n\n{token}\n\n{validity}\n{words.closing}\n\n"
        f"-- {site}\n"
    )
    e = html.escape
    rich = (
        "<!DOCTYPE html><html><body>"
        f"<p>Hello {e(username)},</p><p>{e(intro)}</p>"
        f'<p><a href="{e(link, quote=True)}">{e(words.action)}</a></p>'
        f"<p>or enter this code on the page:</p><p><code>{e(token)}</code></p>"
        f"<p>{e(validity)}<br>{e(words.closing)}</p><p>&mdash; {e(site)}</p>"
        "</body></html>\n"
    )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=_domain_of(sender))
    # RFC 3834: an automatic mail; well-behaved responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(plain)
    message.add_alternative(rich, subtype="html")
    return message


def _domain_of(sender: str) -> str:
    try:
        domain = Address(addr_spec=_addr_spec(sender)).domain
    except (ValueError, IndexError):
        domain = ""
    return domain or "localhost"


def _addr_spec(sender: str) -> str:
    # "Name <a@b>" or "a@b"
    return sender[sender.rfind("<") + 1 : sender.rfind(">")] if "<" in sender else sender
