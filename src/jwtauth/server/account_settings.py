"""Settings of the account flows (mail, one-time tokens, second factors, throttling).

Read from ``JWTAUTH_*`` like ``config.Settings``; kept apart only while another change
owns ``config.py``. Phase 2 moves these fields into ``Settings`` unchanged (same names,
same defaults), so the environment variables below are already the final ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigError
from .config import Duration


class AccountSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JWTAUTH_", env_file=".env", extra="ignore", frozen=True
    )

    # smtp://host:port (STARTTLS when offered), smtp+starttls://... (STARTTLS required),
    # smtps://user:pass@host:465 (TLS from the first byte). A secret: it may hold a password.
    smtp_url: SecretStr | None = None
    # PEM file of the CA that signs the SMTP server's certificate (tests, private CAs);
    # verification is never turned off.
    smtp_ca_file: Path | None = None
    smtp_timeout: float = Field(10.0, gt=0, le=300)
    mail_from: str | None = Field(None, max_length=320)
    # The name in subjects, the TOTP issuer and the WebAuthn RP name.
    site_name: str = Field("jwtauth", min_length=1, max_length=64)
    mail_max_attempts: int = Field(8, ge=1, le=100)
    mail_retry_base: Duration = 30
    mail_retry_max: Duration = 3600
    mail_claim_ttl: Duration = 120
    # Delivered or abandoned outbox rows (no body left) are pruned after this long.
    mail_retention: Duration = 7 * 86400
    email_verify_ttl: Duration = 24 * 3600
    password_reset_ttl: Duration = 30 * 60
    reset_mails_per_hour: int = Field(3, ge=1)
    verify_mails_per_hour: int = Field(5, ge=1)
    mfa_token_ttl: Duration = 300
    mfa_max_attempts: int = Field(10, ge=1)
    webauthn_challenge_ttl: Duration = 300
    account_throttle_threshold: int = Field(10, ge=1)
    account_throttle_base: Duration = 1
    account_throttle_max: Duration = 30
    account_throttle_window: Duration = 900

    @model_validator(mode="after")
    def _check(self) -> AccountSettings:
        if self.smtp_url is not None and not self.mail_from:
            raise ValueError("JWTAUTH_SMTP_URL needs JWTAUTH_MAIL_FROM (the sender address)")
        if self.mail_retry_max < self.mail_retry_base:
            raise ValueError("mail_retry_max must not be shorter than mail_retry_base")
        return self

    @property
    def mail_configured(self) -> bool:
        """False: the mail routes answer 503 ``unavailable`` (API.md)."""
        return self.smtp_url is not None


def load_account_settings(**overrides: Any) -> AccountSettings:
    try:
        return AccountSettings(**overrides)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
