"""The OAuth 2.1 / OpenID Connect provider: clients, codes, consents, the families
clients hold, and the back-channel logout outbox (store/oauth_tables.py).

Revision ID: 0005
Revises: 0004
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from jwtauth.server.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _client_fk(nullable: bool = False, primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column(
        "client_id", sa.String(64),
        sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        nullable=nullable, primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("dynamic", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        _client_fk(),
        sa.Column(
            "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
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
    )
    op.create_index("ix_oauth_codes_expires_at", "oauth_codes", ["expires_at"])
    op.create_table(
        "oauth_consents",
        sa.Column(
            "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _client_fk(primary_key=True),
        sa.Column("scope", sa.String(2000), nullable=False),
        sa.Column("granted_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "oauth_grants",
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _client_fk(),
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
    )
    op.create_index("ix_oauth_grants_client_id", "oauth_grants", ["client_id"])
    op.create_index("ix_oauth_grants_user_id", "oauth_grants", ["user_id"])
    op.create_index("ix_oauth_grants_parent_sid", "oauth_grants", ["parent_sid"])
    op.create_table(
        "oauth_logout_outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        _client_fk(),
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
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_oauth_logout_outbox_due", "oauth_logout_outbox",
        ["delivered_at", "failed_at", "next_attempt_at"],
    )


def downgrade() -> None:
    for table in ("oauth_logout_outbox", "oauth_grants", "oauth_consents", "oauth_codes",
                  "oauth_clients"):
        op.drop_table(table)
