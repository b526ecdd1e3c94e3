"""Assurance: which factors a sign-in used, as ``amr`` (RFC 8176) and ``acr`` (NIST SP
800-63B levels ``aal1`` / ``aal2``), and the rule a protected route applies to them.

``amr`` values (the closed set API.md allows): ``pwd`` password, ``otp`` a TOTP or a
recovery code (both one-time passwords), ``hwk`` a passkey (proof of possession of a
hardware- or platform-held key), ``user`` the authenticator verified the user (a
passkey with the UV flag; RFC 8176 has no finer value here among the allowed ones),
``mfa`` when two or more distinct factors were proved. ``acr`` is ``aal2`` after two
factors (password + TOTP/recovery code) or a user-verified passkey (a multi-factor
cryptographic authenticator in SP 800-63B terms), ``aal1`` otherwise.

``require_aal`` (phase 2 puts it in ``jwtauth.fastapi`` / ``jwtauth.starlette``; the
library must not import the server, so the check below moves with it) answers a token
whose ``acr`` is too weak, or whose ``auth_time`` is older than ``max_age``, as RFC
9470 section 3 says: 401, ``WWW-Authenticate: Bearer error="insufficient_user_authentication",
error_description="...", acr_values="aal2"`` (and ``max_age=N`` when that was the
reason), JSON body ``{"error": "insufficient_user_authentication", "message": ...}``.
``shortfall`` is that logic; ``challenge`` builds the parts of the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Acr = Literal["aal1", "aal2"]
_RANK = {"aal1": 1, "aal2": 2}


class Factor(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a factor's name
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"  # user presence only: never accepted for sign-in (API.md)
    PASSKEY_VERIFIED = "passkey_verified"


_AMR = {
    Factor.PASSWORD: ("pwd",),
    Factor.TOTP: ("otp",),
    Factor.RECOVERY_CODE: ("otp",),
    Factor.PASSKEY: ("hwk",),
    Factor.PASSKEY_VERIFIED: ("hwk", "user"),
}
# Which factor category each proves: knowledge, possession, or both (a UV passkey).
_CATEGORIES = {
    Factor.PASSWORD: {"know"},
    Factor.TOTP: {"have"},
    Factor.RECOVERY_CODE: {"have"},
    Factor.PASSKEY: {"have"},
    Factor.PASSKEY_VERIFIED: {"have", "know"},
}


def _categories(factors: Iterable[Factor]) -> set[str]:
    return set().union(*(_CATEGORIES[f] for f in factors))


def amr_for(factors: Iterable[Factor]) -> list[str]:
    """RFC 8176 values, in a stable order, ``mfa`` last when it applies."""
    used = list(dict.fromkeys(factors))
    values = list(dict.fromkeys(v for f in used for v in _AMR[f]))
    if len(_categories(used)) >= 2:
        values.append("mfa")
    return values


def acr_for(factors: Iterable[Factor]) -> Acr:
    return "aal2" if len(_categories(factors)) >= 2 else "aal1"


def factors_from_amr(amr: Iterable[str]) -> list[Factor]:
    """What an earlier step proved (an ``mfa_token`` stores its ``amr``)."""
    found: list[Factor] = []
    values = set(amr)
    if "pwd" in values:
        found.append(Factor.PASSWORD)
    if "hwk" in values:
        found.append(Factor.PASSKEY_VERIFIED if "user" in values else Factor.PASSKEY)
    if "otp" in values:
        found.append(Factor.TOTP)
    return found


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why a token is not enough: a weaker ``acr`` or an older ``auth_time``."""

    required: Acr
    max_age: int | None
    reason: Literal["acr", "max_age"]


def shortfall(
    claims: Mapping[str, Any], required: Acr, *, max_age: int | None = None, now: float
) -> Shortfall | None:
    """None when the token's ``acr`` is at least ``required`` (and, with ``max_age``,
    its ``auth_time`` is recent enough). A missing or unknown ``acr`` counts as below
    every level: fail closed."""
    acr = claims.get("acr")
    if not isinstance(acr, str) or _RANK.get(acr, 0) < _RANK[required]:
        return Shortfall(required, max_age, "acr")
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool) or (
            now - auth_time > max_age
        ):
            return Shortfall(required, max_age, "max_age")
    return None


def challenge(found: Shortfall, *, realm: str = "jwtauth") -> tuple[int, dict[str, str],
                                                                    dict[str, str]]:
    """(status, body, headers) of RFC 9470 section 3 for ``found``."""
    message = (
        "A stronger sign-in is needed: sign in with a second factor or a passkey."
        if found.reason == "acr"
        else "A more recent sign-in is needed."
    )
    params = [
        f'realm="{realm}"', 'error="insufficient_user_authentication"',
        f'error_description="{message}"', f'acr_values="{found.required}"',
    ]
    if found.max_age is not None:
        params.append(f'max_age="{found.max_age}"')
    headers = {"WWW-Authenticate": "Bearer " + ", ".join(params)}
    return 401, {"error": "insufficient_user_authentication", "message": message}, headers
