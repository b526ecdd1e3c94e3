"""Tables of the account flows (issue 11): the mail outbox, one-time tokens, TOTP,
recovery codes, MFA sign-in challenges, passkeys and their challenges, and the
account-wide sign-in throttle. On the one ``metadata`` of ``tables.py``; created by
migration 0006. Every secret is stored as a SHA-256 hash or sealed (AES-GCM), never
in clear, except an outbox row's token while the mail is undelivered and no
key-encryption key exists (see ``mail.outbox``).
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _user_fk(nullable: bool = False) -> sa.Column[str]:
    return sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=nullable,
    )


# One row per mail. ``secret_sealed`` (the token the mail carries) and ``params`` are
# cleared once the mail is delivered or abandoned; the row stays as a record until pruned.
mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", _BIGINT, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(36), nullable=True),  # no FK: the record outlives a user
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("secret_sealed", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),  # the token's: no use after it
    sa.Column("claimed_by", sa.String(36), nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Index("ix_mail_outbox_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Email verification and password reset tokens: only their SHA-256 is kept.
one_time_tokens = sa.Table(
    "one_time_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    _user_fk(),
    sa.Column("email_folded", sa.String(320), nullable=True),  # the address it verifies
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Index("ix_one_time_tokens_user", "user_id", "purpose", "created_at"),
)

# At most one TOTP credential per user; pending until ``confirmed_at``. ``last_step``
# is the RFC 6238 time-step of the last accepted code: only a greater one is accepted.
totp_credentials = sa.Table(
    "totp_credentials",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("secret_sealed", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.Column("last_step", _BIGINT, nullable=True),
)

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    _user_fk(),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.PrimaryKeyConstraint("user_id", "code_hash"),
)

# The state between a correct password and the second factor (``mfa_token``).
mfa_challenges = sa.Table(
    "mfa_challenges",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    _user_fk(),
    sa.Column("amr", sa.JSON, nullable=False),  # what the first step proved, e.g. ["pwd"]
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

webauthn_credentials = sa.Table(
    "webauthn_credentials",
    metadata,
    sa.Column("id", sa.String(1400), primary_key=True),  # base64url of <= 1023 bytes
    _user_fk(),
    sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE_Key
    sa.Column("sign_count", _BIGINT, nullable=False),
    sa.Column("transports", sa.JSON, nullable=False),
    sa.Column("aaguid", sa.String(36), nullable=False),
    sa.Column("backed_up", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Index("ix_webauthn_credentials_user_id", "user_id"),
)

# Registration and sign-in challenges, single use, at any instance.
webauthn_challenges = sa.Table(
    "webauthn_challenges",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # register | login
    sa.Column("challenge", sa.String(128), nullable=False, unique=True),  # base64url
    sa.Column("user_id", sa.String(36), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

# Failed sign-ins of one account from any address (ratelimit_account.py); ``subject``
# is a digest of the account key, never the name.
account_failures = sa.Table(
    "account_failures",
    metadata,
    sa.Column("id", _BIGINT, primary_key=True),
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_account_failures_subject_at", "subject", "at"),
)

# Client addresses (digests) that signed in to an account: the account-wide throttle
# never slows them, so an attacker cannot lock the owner out.
account_known_clients = sa.Table(
    "account_known_clients",
    metadata,
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("last_success", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("subject", "client"),
)

ACCOUNT_TABLES = (
    mail_outbox, one_time_tokens, totp_credentials, recovery_codes, mfa_challenges,
    webauthn_credentials, webauthn_challenges, account_failures, account_known_clients,
)
