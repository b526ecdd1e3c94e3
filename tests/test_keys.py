"""Signing keys as the server makes them: kids (RFC 7638 thumbprints) and private keys at
rest. Public JWKs and the keyring are tests/library/test_keyring.py."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest

from jwtauth import ConfigError
from jwtauth.keys import KeyState, SigningKey
from jwtauth.server.keys import (
    KeyCipher,
    generate_key,
    load_or_create_kek_file,
    load_private_pem,
    private_pem,
)
from jwtauth.server.store.tables import signing_keys

from conftest import Api, AppFactory, Backend

ASYMMETRIC = ["ES256", "RS256", "EdDSA"]
KEYS_DIR = Path(__file__).parent / "keys"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

# RFC 7638 section 3.2: the required members of each key type, in lexicographic order.
_REQUIRED = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def thumbprint(jwk: dict[str, Any]) -> str:
    members = {name: jwk[name] for name in _REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: generate_key(alg) for alg in ASYMMETRIC}  # type: ignore[arg-type]


async def stored_keys(api: Api) -> dict[str, Any]:
    async with api.server.db.connect() as conn:
        return {row.kid: row for row in await conn.execute(signing_keys.select())}


# -- kids and JWKs ---------------------------------------------------------------------


def test_thumbprint_helper_matches_rfc7638_vector() -> None:
    vector = json.loads((KEYS_DIR / "rfc7638_rsa.json").read_text())
    assert thumbprint(vector["jwk"]) == vector["thumbprint"]


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_generated_kid_is_rfc7638_thumbprint(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    assert key.alg == alg
    assert key.kid == thumbprint(key.public_jwk())


def test_two_generated_keys_differ() -> None:
    assert generate_key("ES256").kid != generate_key("ES256").kid


def test_hs256_is_not_generated() -> None:
    with pytest.raises(ConfigError, match="JWTAUTH_SECRET"):
        generate_key("HS256")


# -- sealing private keys --------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_key_cipher_round_trips(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    cipher = KeyCipher(secrets.token_bytes(32))
    pem = private_pem(key)
    sealed = cipher.seal(key.kid, pem)
    assert sealed.startswith("aesgcm:v1:") and "PRIVATE KEY" not in sealed
    assert cipher.seal(key.kid, pem) != sealed  # a fresh nonce every time
    opened = cipher.open(key.kid, sealed)
    assert opened == pem
    assert load_private_pem(opened, kid=key.kid, alg=key.alg, state=KeyState.CURRENT).kid == key.kid


def test_key_cipher_open_with_wrong_kek_raises_config_error(keys: dict[str, SigningKey]) -> None:
    key = keys["ES256"]
    sealed = KeyCipher(secrets.token_bytes(32)).seal(key.kid, private_pem(key))
    with pytest.raises(ConfigError):
        KeyCipher(secrets.token_bytes(32)).open(key.kid, sealed)


def test_sealed_key_moved_to_another_kid_fails(keys: dict[str, SigningKey]) -> None:
    # The kid is associated data: a blob copied onto another key's row does not open.
    cipher = KeyCipher(secrets.token_bytes(32))
    sealed = cipher.seal(keys["ES256"].kid, private_pem(keys["ES256"]))
    with pytest.raises(ConfigError):
        cipher.open(keys["EdDSA"].kid, sealed)


@pytest.mark.parametrize("damage", ["flipped", "truncated", "not-base64", "empty"])
def test_damaged_sealed_key_raises_config_error(keys: dict[str, SigningKey], damage: str) -> None:
    key = keys["ES256"]
    cipher = KeyCipher(secrets.token_bytes(32))
    sealed = cipher.seal(key.kid, private_pem(key))
    body = sealed[len(KeyCipher.PREFIX) :]
    middle = len(body) // 2
    damaged = KeyCipher.PREFIX + {
        "flipped": body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :],
        "truncated": body[:-3],
        "not-base64": "%%%" + body,
        "empty": "",
    }[damage]
    with pytest.raises(ConfigError):
        cipher.open(key.kid, damaged)


def test_key_cipher_refuses_plaintext_when_a_kek_is_set(keys: dict[str, SigningKey]) -> None:
    key = keys["ES256"]
    with pytest.raises(ConfigError):
        KeyCipher(secrets.token_bytes(32)).open(key.kid, private_pem(key))


def test_key_cipher_refuses_short_kek() -> None:
    with pytest.raises(ConfigError):
        KeyCipher(secrets.token_bytes(31))


def test_kek_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "jwtauth.db.key"
    kek = load_or_create_kek_file(path)
    assert len(kek) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_kek_file(path) == kek


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_kek_file_readable_by_others_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "jwtauth.db.key"
    load_or_create_kek_file(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_kek_file(path)


def test_kek_file_with_short_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "jwtauth.db.key"
    path.write_bytes(base64.urlsafe_b64encode(b"x" * 16))
    path.chmod(0o600)
    with pytest.raises(ConfigError):
        load_or_create_kek_file(path)


# -- private keys in the store ---------------------------------------------------------


@pytest.fixture
def no_kek_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWTAUTH_KEY_ENCRYPTION_KEY", raising=False)


@SQLITE_ONLY
@pytest.mark.usefixtures("no_kek_env")
async def test_sqlite_key_sealed_with_file_beside_database(
    make_api: AppFactory, backend: Backend
) -> None:
    api = await make_api()
    (row,) = (await stored_keys(api)).values()
    assert row.private_key.startswith("aesgcm:v1:")
    db_path = Path(backend.overrides["database_url"].removeprefix("sqlite:///"))
    key_file = db_path.with_name(db_path.name + ".key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem = KeyCipher(load_or_create_kek_file(key_file)).open(row.kid, row.private_key)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")


@POSTGRES_ONLY
@pytest.mark.usefixtures("no_kek_env")
async def test_postgres_key_is_plain_pem_without_kek(make_api: AppFactory) -> None:
    api = await make_api()
    (row,) = (await stored_keys(api)).values()
    assert row.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert row.kid == api.service.keyring.signing_key.kid


async def test_key_sealed_with_configured_kek(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    kek = secrets.token_urlsafe(36)
    assert len(kek) == 48
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        api = await make_api(key_encryption_key=kek)
    assert "stored unencrypted" not in caplog.text
    (row,) = (await stored_keys(api)).values()
    assert row.private_key.startswith("aesgcm:v1:")
    assert KeyCipher(kek.encode()).open(row.kid, row.private_key).startswith("-----BEGIN")
    restarted = await make_api(key_encryption_key=kek)
    assert restarted.service.keyring.signing_key.kid == row.kid


async def test_switching_algorithm_adds_key_and_keeps_old_one(make_api: AppFactory) -> None:
    first = await make_api()
    tokens = await first.signup()
    old = first.service.keyring.signing_key
    assert old.alg == "ES256"

    second = await make_api(clock=first.clock, algorithm="EdDSA")
    new = second.service.keyring.signing_key
    assert new.alg == "EdDSA" and new.kid != old.kid
    states = {kid: row.state for kid, row in (await stored_keys(second)).items()}
    assert states == {old.kid: "retiring", new.kid: "current"}

    jwks = (await second.client.get("/.well-known/jwks.json")).json()
    assert {(k["kid"], k["alg"]) for k in jwks["keys"]} == {(old.kid, "ES256"), (new.kid, "EdDSA")}
    me = await second.client.get("/users/me", headers=tokens.headers)
    assert me.status_code == 200, me.text
    fresh = await second.login()
    header = json.loads(base64.urlsafe_b64decode(fresh.access_token.split(".")[0] + "=="))
    assert (header["alg"], header["kid"]) == ("EdDSA", new.kid)


async def test_unsealed_private_keys_are_announced_at_start(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL without JWTAUTH_KEY_ENCRYPTION_KEY stores plain PEM: allowed, never silent.
    with caplog.at_level(logging.WARNING, logger="jwtauth"):
        api = await make_api()
    unsealed = "private signing keys are stored unencrypted"
    on_postgres = api.server.db.sqlite_path is None
    assert (unsealed in caplog.text) is on_postgres
