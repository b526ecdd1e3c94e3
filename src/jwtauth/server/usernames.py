"""Usernames are one account per name without regard to case (API.md: ``Alice`` cannot
register beside ``alice``; login accepts any case and the stored spelling is returned).

Registration allows only ``[A-Za-z0-9_.-]``, so ASCII case folding is exact for every
stored name, and the database folds the same way: the unique index of migration 0004
is on ``lower(username)``, which is ASCII-only on SQLite and, for ASCII text, the same
on PostgreSQL whatever the collation. ``fold`` deliberately leaves non-ASCII letters as
they are: a name typed at login with, say, U+212A KELVIN SIGN must not become ``k``
(which ``str.lower`` and PostgreSQL's Unicode ``lower`` would both do) and match
another account. Such a name matches no account; it is still limited per address.
"""

from __future__ import annotations

import string

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(username: str) -> str:
    """The case-insensitive key of a username: ASCII letters lowered, nothing else."""
    return username.translate(_ASCII_LOWER)


__all__ = ["fold"]
