"""The OAuth provider's tables, on the same ``metadata`` as tables.py (migration 0005).

Secrets, codes and refresh tokens appear only as SHA-256 hashes. A client's rows go with
it (ON DELETE CASCADE) once its families have been revoked (store/oauth.py).
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=True),  # None: a public client
    sa.Column("metadata", sa.JSON, nullable=False),  # ClientMetadata.public()
    sa.Column("dynamic", sa.Boolean, nullable=False),  # registered through RFC 7591
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

oauth_codes = sa.Table(
    "oauth_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column(
        "client_id", sa.String(64),
        sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("scope", sa.String(2000), nullable=False),
    sa.Column("code_challenge", sa.String(64), nullable=False),
    sa.Column("nonce", sa.String(512), nullable=True),
    sa.Column("resource", sa.String(2000), nullable=True),
    sa.Column("signin_sid", sa.String(36), nullable=False),
    sa.Column("auth_time", UTCDateTime, nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("acr", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column("replayed_at", UTCDateTime, nullable=True),
    sa.Column("family_id", sa.String(36), nullable=True),
    sa.Index("ix_oauth_codes_expires_at", "expires_at"),
)

# Consent is remembered per user and client: the union of the scopes granted.
oauth_consents = sa.Table(
    "oauth_consents",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "client_id", sa.String(64),
        sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True,
    ),
    sa.Column("scope", sa.String(2000), nullable=False),
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# One row per session family an OAuth client holds (the family is a sessions row).
oauth_grants = sa.Table(
    "oauth_grants",
    metadata,
    sa.Column(
        "session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "client_id", sa.String(64),
        sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("scope", sa.String(2000), nullable=False),
    sa.Column("resource", sa.String(2000), nullable=True),
    sa.Column("parent_sid", sa.String(36), nullable=True),
    sa.Column("offline", sa.Boolean, nullable=False),
    sa.Column("nonce", sa.String(512), nullable=True),
    sa.Column("auth_time", UTCDateTime, nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("acr", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_oauth_grants_client_id", "client_id"),
    sa.Index("ix_oauth_grants_user_id", "user_id"),
    sa.Index("ix_oauth_grants_parent_sid", "parent_sid"),
)

# Back-channel logout tokens to send: one row per (family, client), claimed by one
# instance at a time (a lease), retried with back-off while the client answers 5xx.
oauth_logout_outbox = sa.Table(
    "oauth_logout_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "client_id", sa.String(64),
        sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("sid", sa.String(36), nullable=False),
    sa.Column("sub", sa.String(36), nullable=False),
    sa.Column("target", sa.String(2000), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("failed_at", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.UniqueConstraint("sid", "client_id", name="uq_oauth_logout_outbox_sid_client"),
    sa.Index("ix_oauth_logout_outbox_due", "delivered_at", "failed_at", "next_attempt_at"),
    sqlite_autoincrement=True,
)
