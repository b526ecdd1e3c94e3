"""The rules for usernames, roles and emails: one place, used by every entry point.

The HTTP models (``web/models.py``), the services and so the command line all call these
functions, and the OpenAPI document shows the same patterns, so no entry point can accept
what another refuses. A role matters most: ``/auth/check`` sends the roles to a proxy as
one comma-separated header, so a role holding a comma (``editor,admin``) would read there
as two roles, one of them ``admin``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...errors import InvalidInput

# The bodies of the patterns; matched whole (``fullmatch``: ``$`` would let a final
# newline through) and shown anchored in the OpenAPI document.
_USERNAME = r"[A-Za-z0-9_.-]{3,64}"
_ROLE = r"[A-Za-z0-9_.:-]{1,64}"
# No \s: Python, Rust and JSON Schema (ECMA-262) regexes disagree on what it matches
# (U+0085), and the OpenAPI document must promise exactly what the server accepts.
_EMAIL = r"[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+"

USERNAME_PATTERN = f"^{_USERNAME}$"
ROLE_PATTERN = f"^{_ROLE}$"
EMAIL_PATTERN = f"^{_EMAIL}$"
EMAIL_MAX_LENGTH = 320
MAX_ROLES = 32

USERNAME_MESSAGE = (
    "A username is 3 to 64 characters: letters A-Z and a-z, digits, '_', '.' or '-'."
)
ROLE_MESSAGE = (
    "A role is 1 to 64 characters: letters A-Z and a-z, digits, '_', '.', ':' or '-' "
    "(no commas or spaces)."
)
ROLES_MESSAGE = f"A user has at most {MAX_ROLES} roles."
EMAIL_MESSAGE = "The email address is not valid."

_username = re.compile(_USERNAME)
_role = re.compile(_ROLE)
_email = re.compile(_EMAIL)


def validate_username(username: str) -> str:
    if not _username.fullmatch(username):
        raise InvalidInput(USERNAME_MESSAGE, field="username")
    return username


def validate_role(role: str) -> str:
    if not _role.fullmatch(role):
        raise InvalidInput(ROLE_MESSAGE, field="roles")
    return role


def validate_roles(roles: Iterable[str]) -> list[str]:
    """The roles, each checked, duplicates dropped (the first one's place kept)."""
    given = list(roles)
    if len(given) > MAX_ROLES:
        raise InvalidInput(ROLES_MESSAGE, field="roles")
    return list(dict.fromkeys(validate_role(role) for role in given))


def validate_email(email: str) -> str:
    if len(email) > EMAIL_MAX_LENGTH or not _email.fullmatch(email):
        raise InvalidInput(EMAIL_MESSAGE, field="email")
    return email
