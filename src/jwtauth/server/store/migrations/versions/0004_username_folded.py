"""One account per name without regard to case: a unique index on lower(username).

Revision ID: 0004
Revises: 0003

``lower`` and not a Unicode case fold: SQLite has no casefold, and its ``lower`` folds
ASCII only, while PostgreSQL's follows the database collation for other letters. Every
username API.md allows is ``[A-Za-z0-9_.-]``, for which both are the same exact ASCII
fold (and ``jwtauth.server.usernames.fold`` is the same in Python). A non-ASCII name
put in by hand would be folded differently by the two databases; none can be
registered.

Names that already collide are not merged or renamed here: which account to keep is
the operator's decision. The upgrade stops before changing anything, names them, and
``jwtauth db upgrade`` exits with status 2.
"""

import sqlalchemy as sa
from alembic import op

from jwtauth.server.store.database import MigrationBlocked
from jwtauth.server.terminal import printable

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX = "ux_users_username_folded"


def upgrade() -> None:
    folded = sa.func.lower(sa.column("username"))
    users = sa.table("users", sa.column("username"))
    clashing = sa.select(folded).select_from(users).group_by(folded).having(
        sa.func.count() > 1
    )
    rows = op.get_bind().execute(
        sa.select(folded, users.c.username)
        .where(folded.in_(clashing))
        .order_by(folded, users.c.username)
    ).all()
    if rows:
        groups: dict[str, list[str]] = {}
        for key, name in rows:
            groups.setdefault(key, []).append(printable(name))
        listed = "; ".join(", ".join(names) for names in groups.values())
        raise MigrationBlocked(
            f"{len(groups)} username(s) differ only in case: {listed}. Usernames are now "
            "unique without regard to case; rename or delete all but one account of each "
            "(e.g. `jwtauth user delete NAME`), then run `jwtauth db upgrade` again. "
            "Nothing was changed."
        )
    op.create_index(INDEX, "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
