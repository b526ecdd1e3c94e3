"""Password hashing: argon2id for new hashes, bcrypt still accepted and upgraded.

Hashing costs tens of milliseconds of CPU on purpose, so it always runs in a thread pool
(argon2-cffi and bcrypt release the GIL) and never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import bcrypt
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 1024
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords of public breach corpora.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    return password.lower() in _common_passwords()


def validate_new_password(password: str, *, username: str | None = None) -> None:
    """Raise ``InvalidInput`` for a password a new account or change may not use."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"The password must be {MIN_LENGTH} to {MAX_LENGTH} characters long.",
            field="password",
        )
    if is_common_password(password):
        raise InvalidInput("This password is too common; choose another.", field="password")
    if username and password.lower() == username.lower():
        raise InvalidInput("The password must not be the username.", field="password")


HASH_THREAD_NICENESS = 10


def _yield_to_requests() -> None:
    """Run this hashing thread at a lower CPU priority than the event loop.

    Hashing is CPU-bound by design; at equal priority a burst of logins takes the cores
    from every other request. Niced, it still uses every idle cycle, but the loop thread
    (token checks, refreshes) is scheduled first. Linux applies priorities per thread.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)
    except (AttributeError, OSError):
        pass  # not Linux, or not permitted: hashing still works, just unprioritized


class PasswordHasher:
    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        threads: int = 0,
    ) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 2,
            thread_name_prefix="jwtauth-hash",
            initializer=_yield_to_requests,
        )
        # Unknown usernames are checked against this hash so a failed login costs the
        # same time whether or not the account exists (no user enumeration by timing).
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    def hash_sync(self, password: str) -> str:
        return self._argon2.hash(password)

    def _verify_sync(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        if stored is None:
            self._check_argon2(self._dummy_hash, password)
            return False, None
        if stored.startswith(_BCRYPT_PREFIXES):
            ok = bcrypt.checkpw(password.encode()[:72], stored.encode())
            return ok, (self._argon2.hash(password) if ok else None)
        ok = self._check_argon2(stored, password)
        if ok and self._argon2.check_needs_rehash(stored):
            return True, self._argon2.hash(password)
        return ok, None

    def _check_argon2(self, stored: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.hash_sync, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """(matches, new hash to store or None). ``stored=None`` means no such user."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._verify_sync, stored, password
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
