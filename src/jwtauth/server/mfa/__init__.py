"""Second factors and assurance: TOTP, recovery codes, the ``mfa_token`` step, passkeys,
and the ``amr``/``acr`` they earn. No web framework here (the server's core).

Module map:

- ``assurance``     ``amr_for`` / ``acr_for`` (RFC 8176 values, aal1/aal2) and the RFC 9470
                    rule of ``require_aal`` (``shortfall``, ``challenge``)
- ``totp``          pyotp and segno: secret, otpauth URI, QR as SVG, code -> time-step
- ``recovery``      recovery codes: 80-bit, SHA-256 salted with the user id
- ``totp_service``  ``TotpService``: begin / confirm / use_code / use_recovery_code / disable
- ``challenge``     ``MfaChallenges``: the ``mfa_token`` (issue, complete -> ``MfaResult``)
- ``passkeys``      ``PasskeyService`` with py_webauthn: options, register, authenticate
                    -> ``PasskeyLogin``, list, remove; ``RelyingParty.for_origin``

Storage: ``store.totp``, ``store.mfa_challenges``, ``store.passkeys`` on the tables of
``store.account_tables`` (migration 0006). Secrets at rest: ``sealing.py``.

What phase 2 wires (routes of API.md "Accounts people expect"):

- login branch: after a correct password, ``TotpService.is_on`` -> answer
  ``{"mfa_required", "mfa_token", "methods"}`` from ``MfaChallenges.issue(user, ["pwd"])``
  instead of tokens; ``POST /auth/login/mfa`` -> ``limiter.check``, ``complete``, on
  failure ``limiter.failed`` (wrong codes are login failures), on success a session
  whose access tokens carry ``amr`` / ``acr`` (and ``auth_time``) from the result;
- passkey sign-in: ``PasskeyService.authenticate`` -> a session with its ``amr``/``acr``;
- every sign-in path refuses a disabled user with the same 401 as a wrong password
  (passkeys already do; the password and MFA paths read ``users.disabled_at``);
- ``require_aal`` in ``jwtauth.fastapi`` / ``jwtauth.starlette`` from
  ``assurance.shortfall`` / ``challenge`` (moved into the library), and an
  ``InsufficientUserAuthentication`` error in ``jwtauth.errors`` mapped to 401 in
  ``jwtauth.http``;
- background pruning: ``MfaChallenges.prune``, ``PasskeyService.prune``.
"""

from .assurance import Factor, acr_for, amr_for
from .challenge import MfaChallenges, MfaResult
from .passkeys import PasskeyLogin, PasskeyService, RelyingParty
from .totp_service import Enrolment, TotpService

__all__ = [
    "Enrolment",
    "Factor",
    "MfaChallenges",
    "MfaResult",
    "PasskeyLogin",
    "PasskeyService",
    "RelyingParty",
    "TotpService",
    "acr_for",
    "amr_for",
]
