"""Email addresses: the one folding rule for lookups that ignore case (API.md).

The whole address is folded, local part included: RFC 5321 lets a server treat the
local part as case-sensitive, but no mail provider people use does, and API.md wants
``Alice@Example.org`` and ``alice@example.org`` to be one account's address.
"""

from __future__ import annotations

import unicodedata


def fold_email(address: str) -> str:
    """The form stored in ``users.email_folded`` and compared on lookups."""
    return unicodedata.normalize("NFKC", address.strip()).casefold()


def is_plausible_email(address: str) -> bool:
    """A cheap shape check (one ``@``, a dot in the domain, no spaces or controls); the
    mail server is the judge of the rest."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local or "." not in domain.strip("."):
        return False
    return len(address) <= 320 and not any(c.isspace() or ord(c) < 32 for c in address)
