"""Recovery codes: ten per enrolment, shown once, each good for one sign-in.

Each code is 80 random bits written as 16 base32 characters in groups of four
(``abcd-efgh-ijkl-mnop``). At 80 bits a stored SHA-256 cannot be reversed by
brute force, so codes are hashed like refresh tokens rather than with argon2: that
keeps a use a single indexed lookup and one conditional UPDATE (single use under
concurrency), where argon2 would have to try up to ten slow hashes per attempt. The
hash is salted with the user id, so equal codes of two users never share a hash.
Input is forgiving: case, spaces and dashes are ignored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

COUNT = 10
CODE_BYTES = 10  # 80 bits


def new_codes(count: int = COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().lower()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalize(code: str) -> str | None:
    """The 16 characters of a code as typed, or None if it cannot be one."""
    cleaned = "".join(code.split()).replace("-", "").upper()
    if len(cleaned) != 16:
        return None
    try:
        base64.b32decode(cleaned)
    except ValueError:
        return None
    return cleaned


def hash_code(user_id: str, code: str) -> str | None:
    normalized = normalize(code)
    if normalized is None:
        return None
    return hashlib.sha256(f"jwtauth recovery v1\x00{user_id}\x00{normalized}".encode()).hexdigest()
