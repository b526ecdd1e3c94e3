"""Sending one message over SMTP with aiosmtplib (a maintained asyncio client).

``JWTAUTH_SMTP_URL`` forms:

- ``smtp://host:port``: plain connection, upgraded with STARTTLS when the server
  offers it (aiosmtplib's default). With a user name in the URL, STARTTLS is
  required: a password never crosses the network in clear.
- ``smtp+starttls://[user:pass@]host:port``: STARTTLS required (no downgrade by a
  network attacker who strips the offer).
- ``smtps://[user:pass@]host:465``: TLS from the first byte (RFC 8314).

Certificates are always verified, against the system's CAs or the PEM file of
``JWTAUTH_SMTP_CA_FILE``; there is no setting that turns verification off.

Failures come back as ``MailTemporaryError`` (connection trouble, TLS trouble, 4xx,
authentication: retry later) or ``MailPermanentError`` (a 5xx answer to this message:
retrying the same message cannot help). Their messages name the SMTP code and the
exception class only: never the message, whose body holds a token.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from ...errors import ConfigError

TlsMode = Literal["opportunistic", "starttls", "implicit"]
_SCHEMES: dict[str, tuple[TlsMode, int]] = {
    "smtp": ("opportunistic", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("implicit", 465),
}


class MailError(Exception):
    """A message was not delivered; ``str(error)`` is safe to log."""


class MailTemporaryError(MailError):
    pass


class MailPermanentError(MailError):
    pass


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    tls: TlsMode
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password
        user = f"{self.username}@" if self.username else ""
        return f"SmtpTarget({self.tls} {user}{self.host}:{self.port})"

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Raises ``ConfigError`` (whose message never repeats the URL: it may hold a
        password)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ConfigError("JWTAUTH_SMTP_URL is not a URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ConfigError(
                "JWTAUTH_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
            )
        if not parts.hostname:
            raise ConfigError("JWTAUTH_SMTP_URL names no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError("JWTAUTH_SMTP_URL takes no path or query")
        tls, default_port = _SCHEMES[scheme]
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username and tls == "opportunistic":
            tls = "starttls"  # credentials only over TLS
        return cls(parts.hostname, port or default_port, tls, username, password)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to the relay; raise ``MailTemporaryError`` or
        ``MailPermanentError``."""
        ...


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification on, always; ``ca_file`` replaces the system's CAs when given."""
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"JWTAUTH_SMTP_CA_FILE {ca_file} is not a file")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class SmtpMailer:
    """One connection per message: mails are rare (a sign-up, a reset) and a fresh
    connection never inherits a half-broken session."""

    def __init__(
        self, target: SmtpTarget, *, ca_file: Path | None = None, timeout: float = 10.0,
        local_hostname: str | None = None,
    ) -> None:
        self.target = target
        self._context = tls_context(ca_file)
        self._timeout = timeout
        self._local_hostname = local_hostname

    def _client(self) -> aiosmtplib.SMTP:
        t = self.target
        return aiosmtplib.SMTP(
            hostname=t.host, port=t.port, username=t.username, password=t.password,
            use_tls=t.tls == "implicit",
            # None: upgrade when offered; True: refuse a server that does not offer it.
            start_tls={"implicit": False, "starttls": True, "opportunistic": None}[t.tls],
            tls_context=self._context, validate_certs=True, timeout=self._timeout,
            local_hostname=self._local_hostname,
        )

    async def send(self, message: EmailMessage) -> None:
        try:
            async with self._client() as client:
                await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            raise _by_code(min(codes), "recipient refused") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A configuration problem, not this message's: keep it queued.
            raise MailTemporaryError(f"SMTP authentication failed ({exc.code})") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, type(exc).__name__) from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise MailTemporaryError(f"SMTP connection failed ({type(exc).__name__})") from exc


def _by_code(code: int, what: str) -> MailError:
    if 500 <= code < 600:
        return MailPermanentError(f"SMTP {code}: {what}")
    return MailTemporaryError(f"SMTP {code}: {what}")
