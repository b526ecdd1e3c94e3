"""TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) with pyotp, and the rules around
it that pyotp leaves to us.

- The secret is 160 random bits in base32 (RFC 4226 section 4 asks for at least 128;
  160 is the SHA-1 block size RFC 6238's reference uses), sealed at rest with the
  "totp-secret" subkey of the key-encryption key (``sealing.py``), bound to the user id.
- A code is accepted within one step of drift (RFC 6238 section 5.2: the previous,
  current and next step), and only once: the store keeps the last accepted step per
  user and accepts a code only for a greater step, in one conditional UPDATE, so two
  uses of one code at once, at one instance or two, give one success (section 5.2's
  "MUST NOT accept the second attempt").
- Enrolment is pending until a correct code confirms it; that code counts as used.
- The QR code of the ``otpauth://`` URI is rendered on the server by segno as SVG: no
  script, no ``style`` (only presentation attributes), so the page can show it inline
  or as an ``<img src="data:image/svg+xml,...">`` under ``img-src 'self' data:`` with no
  ``'unsafe-inline'``. It encodes the secret: send it only to the enrolling user.
"""

from __future__ import annotations

import time
from datetime import datetime

import pyotp
import pyotp.utils
import segno

STEP = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_CHARS = 32  # x 5 bits = 160 bits


def new_secret() -> str:
    return pyotp.random_base32(SECRET_CHARS)


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The Key URI Format of Google Authenticator, which every app reads."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """An ``<svg>`` element (no XML declaration) for the page."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, border=4))


def qr_data_uri(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=4))


def step_at(moment: datetime | float) -> int:
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return int(seconds // STEP)


def matching_step(secret: str, code: str, moment: datetime | float) -> int | None:
    """The time-step within the drift window whose code ``code`` is, or None.

    Every candidate is computed and compared in constant time, so the answer's timing
    says nothing about which step (if any) matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    now_step = step_at(moment)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def current_code(secret: str, moment: float | None = None) -> str:
    """The code of ``moment`` (default now): for tests and the CLI, never a route."""
    return str(pyotp.TOTP(secret, digits=DIGITS, interval=STEP).at(moment or time.time()))
