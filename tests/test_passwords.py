"""Password hashing and password rules (jwtauth.passwords)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import argon2
import bcrypt
import pytest
import sqlalchemy as sa

from jwtauth.errors import InvalidInput
from jwtauth.server import passwords
from jwtauth.server.passwords import PasswordHasher, validate_new_password
from jwtauth.server.store.tables import users

from conftest import PASSWORD, Api

FAST = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}


class RecordingArgon2(argon2.PasswordHasher):
    """The real argon2 hasher, noting what it was asked and on which thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, str]] = []  # (method, hash or "", thread name)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.calls.append(("hash", "", threading.current_thread().name))
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls.append(("verify", str(hash), threading.current_thread().name))
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    made = PasswordHasher(**FAST)
    yield made
    made.close()


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PasswordHasher, RecordingArgon2]]:
    monkeypatch.setattr(passwords, "Argon2Hasher", RecordingArgon2)
    made = PasswordHasher(**FAST)
    inner = made._argon2
    assert isinstance(inner, RecordingArgon2)
    inner.calls.clear()  # the dummy hash made by the constructor
    yield made, inner
    made.close()


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


# -- hashing ---------------------------------------------------------------------------


async def test_hash_is_argon2id_with_configured_parameters(hasher: PasswordHasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert PASSWORD not in stored


def test_default_parameters_are_owasp_argon2id() -> None:
    # OWASP's argon2id floor: 19 MiB, 2 iterations, 1 lane.
    made = PasswordHasher()
    try:
        assert made.hash_sync(PASSWORD).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    finally:
        made.close()


async def test_same_password_hashes_differently(hasher: PasswordHasher) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_verify_right_and_wrong_password(hasher: PasswordHasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert await hasher.verify(stored, PASSWORD) == (True, None)
    assert await hasher.verify(stored, PASSWORD + "x") == (False, None)
    assert await hasher.verify(stored, "") == (False, None)


async def test_verify_garbage_hash_is_false(hasher: PasswordHasher) -> None:
    assert await hasher.verify("not-a-hash", PASSWORD) == (False, None)
    assert await hasher.verify("$argon2id$v=19$garbage", PASSWORD) == (False, None)


async def test_weaker_argon2_hash_is_rehashed_on_verify(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)
    try:
        ok, new_hash = await stronger.verify(await hasher.hash(PASSWORD), PASSWORD)
        assert ok is True and new_hash is not None
        assert new_hash.startswith("$argon2id$v=19$m=8192,t=2,p=1$")
        assert await stronger.verify(new_hash, PASSWORD) == (True, None)
    finally:
        stronger.close()


async def test_bcrypt_hash_verifies_and_is_upgraded(hasher: PasswordHasher) -> None:
    ok, new_hash = await hasher.verify(bcrypt_hash(PASSWORD), PASSWORD)
    assert ok is True
    assert new_hash is not None and new_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert await hasher.verify(new_hash, PASSWORD) == (True, None)


async def test_bcrypt_hash_with_wrong_password(hasher: PasswordHasher) -> None:
    assert await hasher.verify(bcrypt_hash(PASSWORD), "wrong-password-1") == (False, None)


async def test_unknown_user_is_false_without_rehash(hasher: PasswordHasher) -> None:
    assert await hasher.verify(None, PASSWORD) == (False, None)
    assert await hasher.verify(None, "") == (False, None)


def test_unknown_user_runs_a_real_argon2_verification(
    recording: tuple[PasswordHasher, RecordingArgon2],
) -> None:
    # No user, same work: the dummy hash is checked at the configured cost, so a
    # missing account cannot be told apart by response time.
    made, inner = recording
    assert made._verify_sync(None, PASSWORD) == (False, None)
    assert len(inner.calls) == 1
    method, checked, _ = inner.calls[0]
    assert method == "verify"
    assert checked == made._dummy_hash
    assert checked.startswith("$argon2id$v=19$m=8192,t=1,p=1$")


async def test_hash_and_verify_run_in_the_hash_pool(
    recording: tuple[PasswordHasher, RecordingArgon2],
) -> None:
    made, inner = recording
    stored = await made.hash(PASSWORD)
    await made.verify(stored, PASSWORD)
    await made.verify(None, PASSWORD)
    assert [call[0] for call in inner.calls] == ["hash", "verify", "verify"]
    threads = {call[2] for call in inner.calls}
    assert all(name.startswith("jwtauth-hash") for name in threads), threads
    assert threading.current_thread().name not in threads


# -- rules for new passwords -----------------------------------------------------------


@pytest.mark.parametrize("password", ["", "Zq8#mVt", "x" * 1025])
def test_password_length_outside_8_to_1024_refused(password: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_new_password(password)
    assert caught.value.field == "password"


@pytest.mark.parametrize("password", ["Zq8#mVt2", "Zq8#mVt2" * 128])
def test_password_length_bounds_accepted(password: str) -> None:
    assert len(password) in (8, 1024)
    validate_new_password(password)


@pytest.mark.parametrize("password", ["password", "PASSWORD", "Password1", "iloveyou", "TrustNo1"])
def test_common_password_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match="common") as caught:
        validate_new_password(password)
    assert caught.value.field == "password"


@pytest.mark.parametrize("username", ["alice-wonder", "Alice-Wonder"])
def test_password_equal_to_username_refused(username: str) -> None:
    with pytest.raises(InvalidInput, match="username"):
        validate_new_password("alice-wonder", username=username)


def test_strong_password_accepted() -> None:
    validate_new_password("v7#Lq!pZ2w-horse-Kettle", username="alice")
    validate_new_password(PASSWORD, username="alice")


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is Linux-only")
async def test_hashing_threads_yield_the_cpu_to_the_event_loop() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8192)
    try:
        def priority() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        loop = asyncio.get_running_loop()
        in_pool = await loop.run_in_executor(hasher._pool, priority)
        # Absolute niceness: at least the configured value, and below the loop's priority.
        assert in_pool >= passwords.HASH_THREAD_NICENESS
        assert in_pool > priority() or priority() >= passwords.HASH_THREAD_NICENESS
    finally:
        hasher.close()


# -- through the app -------------------------------------------------------------------


async def stored_hash(api: Api, username: str) -> str:
    async with api.server.db.connect() as conn:
        return (
            await conn.execute(sa.select(users.c.password_hash).where(users.c.username == username))
        ).scalar_one()


async def test_bcrypt_user_logs_in_and_hash_is_upgraded(api: Api) -> None:
    await api.register("alice")
    async with api.server.db.begin() as conn:
        await conn.execute(
            users.update().where(users.c.username == "alice")
            .values(password_hash=bcrypt_hash(PASSWORD))
        )
    assert (await stored_hash(api, "alice")).startswith("$2b$")
    wrong = await api.client.post(
        "/auth/login", json={"username": "alice", "password": "nope-nope-1"}
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
    assert (await stored_hash(api, "alice")).startswith("$2b$")

    await api.login("alice")
    upgraded = await stored_hash(api, "alice")
    assert upgraded.startswith("$argon2id$")
    await api.login("alice")
    assert await stored_hash(api, "alice") == upgraded
