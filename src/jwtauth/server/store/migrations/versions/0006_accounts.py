"""Accounts people expect (issue 11): users gain email_folded, email_verified and
disabled_at; new tables for the mail outbox, one-time tokens, TOTP, recovery codes,
MFA challenges, passkeys and their challenges, and the account-wide sign-in throttle.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from jwtauth.server.mail.address import fold_email
from jwtauth.server.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _user_fk() -> sa.Column[str]:
    return sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    )


FOLDED_USERNAME_INDEX = "ux_users_username_folded"  # migration 0004


def _users() -> None:
    # Plain ADD COLUMN, which SQLite and PostgreSQL both do in place: a batch (copy the
    # table) would reflect it first and drop what reflection cannot see, such as 0004's
    # unique index on lower(username).
    op.add_column("users", sa.Column("email_folded", sa.String(320), nullable=True))
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("disabled_at", UTCDateTime, nullable=True))
    op.create_index("ix_users_email_folded", "users", ["email_folded"])
    # Folded in Python, not SQL lower(): the same rule as every later lookup.
    bind = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("email"), sa.column("email_folded"))
    for row in bind.execute(sa.select(users.c.id, users.c.email).where(users.c.email.isnot(None))):
        bind.execute(
            users.update().where(users.c.id == row.id).values(email_folded=fold_email(row.email))
        )


def upgrade() -> None:
    _users()
    op.create_table(
        "mail_outbox",
        sa.Column("id", _BIGINT, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("params", sa.JSON, nullable=True),
        sa.Column("secret_sealed", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("claimed_until", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["status", "next_attempt_at"])
    op.create_table(
        "one_time_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        _user_fk(),
        sa.Column("email_folded", sa.String(320), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_index(
        "ix_one_time_tokens_user", "one_time_tokens", ["user_id", "purpose", "created_at"]
    )
    op.create_table(
        "totp_credentials",
        sa.Column(
            "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime, nullable=True),
        sa.Column("last_step", _BIGINT, nullable=True),
    )
    op.create_table(
        "recovery_codes",
        _user_fk(),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("user_id", "code_hash"),
    )
    op.create_table(
        "mfa_challenges",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user_fk(),
        sa.Column("amr", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.String(1400), primary_key=True),
        _user_fk(),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", _BIGINT, nullable=False),
        sa.Column("transports", sa.JSON, nullable=False),
        sa.Column("aaguid", sa.String(36), nullable=False),
        sa.Column("backed_up", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_webauthn_credentials_user_id", "webauthn_credentials", ["user_id"])
    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("challenge", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "account_failures",
        sa.Column("id", _BIGINT, primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_account_failures_subject_at", "account_failures", ["subject", "at"]
    )
    op.create_table(
        "account_known_clients",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("last_success", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("subject", "client"),
    )


def downgrade() -> None:
    for table in (
        "account_known_clients", "account_failures", "webauthn_challenges",
        "webauthn_credentials", "mfa_challenges", "recovery_codes", "totp_credentials",
        "one_time_tokens", "mail_outbox",
    ):
        op.drop_table(table)
    op.drop_index("ix_users_email_folded", "users")
    # SQLite drops columns by copying the table (a batch), which would lose the expression
    # index of 0004 that reflection cannot see: take it off, and put it back after.
    op.drop_index(FOLDED_USERNAME_INDEX, table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("email_verified")
        batch.drop_column("email_folded")
    op.create_index(FOLDED_USERNAME_INDEX, "users", [sa.text("lower(username)")], unique=True)
