"""Settings of the account flows and the sealing of their secrets at rest (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jwtauth.errors import ConfigError
from jwtauth.server.account_settings import AccountSettings, load_account_settings
from jwtauth.server.keys import KeyCipher
from jwtauth.server.sealing import Sealer, SealPurpose, find_kek, subkey_cipher

KEK = os.urandom(32)


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("JWTAUTH_"):
            monkeypatch.delenv(name)
    settings = AccountSettings(_env_file=None)  # type: ignore[call-arg]
    assert not settings.mail_configured
    assert (settings.email_verify_ttl, settings.password_reset_ttl) == (86400, 1800)
    assert (settings.mfa_token_ttl, settings.account_throttle_max) == (300, 30)


def test_smtp_needs_a_sender_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWTAUTH_SMTP_URL", "smtps://u:very-secret-pw@mail.example.org")
    with pytest.raises(ConfigError) as caught:
        load_account_settings(_env_file=None)
    assert "very-secret-pw" not in str(caught.value)
    monkeypatch.setenv("JWTAUTH_MAIL_FROM", "Example <no-reply@example.org>")
    monkeypatch.setenv("JWTAUTH_PASSWORD_RESET_TTL", "15m")
    settings = load_account_settings(_env_file=None)
    assert settings.mail_configured and settings.password_reset_ttl == 900
    assert "very-secret-pw" not in repr(settings)


def test_sealing_is_per_purpose_and_per_row() -> None:
    totp = Sealer(KEK, SealPurpose.TOTP_SECRET)
    sealed = totp.seal("user-1", "JBSWY3DPEHPK3PXP")
    assert sealed.startswith(KeyCipher.PREFIX) and "JBSWY3DPEHPK3PXP" not in sealed
    assert totp.open("user-1", sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(ConfigError):
        totp.open("user-2", sealed)  # moved to another row
    with pytest.raises(ConfigError):
        Sealer(KEK, SealPurpose.MAIL_TOKEN).open("user-1", sealed)  # another purpose
    with pytest.raises(ConfigError):  # the signing keys' cipher is another key
        KeyCipher(KEK).open(f"{SealPurpose.TOTP_SECRET}:user-1", sealed)
    assert subkey_cipher(KEK, SealPurpose.TOTP_SECRET).open(
        f"{SealPurpose.TOTP_SECRET}:user-1", sealed) == "JBSWY3DPEHPK3PXP"


def test_without_a_kek_values_pass_unsealed_and_sealed_ones_fail_closed() -> None:
    plain = Sealer(None, SealPurpose.TOTP_SECRET)
    assert not plain.sealed and plain.seal("u", "v") == "v" and plain.open("u", "v") == "v"
    sealed = Sealer(KEK, SealPurpose.TOTP_SECRET).seal("u", "v")
    with pytest.raises(ConfigError):
        plain.open("u", sealed)


def test_the_kek_comes_from_settings_or_the_file_beside_sqlite(tmp_path: Path) -> None:
    assert find_kek(KEK, tmp_path / "x.db") == KEK
    assert find_kek(None, None) is None
    made = find_kek(None, tmp_path / "x.db")
    assert made is not None and len(made) == 32
    assert (tmp_path / "x.db.key").stat().st_mode & 0o077 == 0
    assert find_kek(None, tmp_path / "x.db") == made  # the same file next time
