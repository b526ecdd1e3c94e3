"""Settings: JWTAUTH_* environment variables, durations, and refusing unsafe secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from jwtauth import ConfigError
from jwtauth.server.config import Settings, load_settings, parse_duration


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No JWTAUTH_* variable or .env file from the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("JWTAUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# -- durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("900", 900), (900, 900), ("15m", 900), ("12h", 43200), ("7d", 604800), ("30s", 30),
     ("0", 0), (" 5m ", 300)],
)
def test_parse_duration(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "m", "15x", "15 minutes", "1.5h", "-5", "15m30s", "1e3", "soon", None, True, 2.5]
)
def test_parse_duration_refuses_bad_values(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


# -- environment -----------------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWTAUTH_ACCESS_TTL", "5m")
    monkeypatch.setenv("JWTAUTH_REFRESH_TTL", "2d")
    monkeypatch.setenv("JWTAUTH_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("JWTAUTH_ALGORITHM", "EdDSA")
    settings = Settings()
    assert settings.access_ttl == 300
    assert settings.refresh_ttl == 2 * 86400
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.algorithm == "EdDSA"


def test_settings_read_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JWTAUTH_ACCESS_TTL=10m\nJWTAUTH_AUDIENCE=blog\n")
    settings = Settings()
    assert (settings.access_ttl, settings.audience) == (600, "blog")


def test_defaults() -> None:
    settings = Settings()
    assert (settings.access_ttl, settings.clock_skew, settings.algorithm) == (900, 30, "ES256")
    assert settings.secret is None and settings.allowed_origins == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("JWTAUTH_ACCESS_TTL", "soon"), ("JWTAUTH_ALGORITHM", "none"), ("JWTAUTH_ALGORITHM", "HS512"),
     ("JWTAUTH_PORT", "70000")],
)
def test_bad_environment_value_is_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name.removeprefix("JWTAUTH_").lower()):
        load_settings()


def test_issuer_trailing_slash_removed() -> None:
    assert Settings(issuer="https://auth.example/").effective_issuer == "https://auth.example"


# -- refusing unsafe configurations ----------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [None, "", secrets.token_urlsafe(32)[:31], "a" * 40, "abababababababababababababababab"],
    ids=["missing", "empty", "31-bytes", "repetitive-40", "two-letters-32"],
)
def test_hs256_refuses_missing_short_or_repetitive_secret(secret: str | None) -> None:
    settings = Settings(algorithm="HS256", secret=secret)
    with pytest.raises(ConfigError, match="JWTAUTH_SECRET"):
        settings.validate_for_serving()


@pytest.mark.parametrize("length", [32, 64])
def test_hs256_accepts_random_secret(length: int) -> None:
    secret = secrets.token_urlsafe(length)[:length]
    assert len(secret.encode()) == length
    Settings(algorithm="HS256", secret=secret).validate_for_serving()


def test_asymmetric_algorithm_needs_no_secret() -> None:
    Settings(algorithm="ES256").validate_for_serving()


def test_short_key_encryption_key_refused() -> None:
    settings = Settings(key_encryption_key=secrets.token_urlsafe(16))
    with pytest.raises(ConfigError, match="JWTAUTH_KEY_ENCRYPTION_KEY"):
        settings.validate_for_serving()


def test_refresh_absolute_ttl_shorter_than_refresh_ttl_refused() -> None:
    with pytest.raises(ConfigError, match="refresh_absolute_ttl"):
        load_settings(refresh_ttl="7d", refresh_absolute_ttl="1d")
    settings = load_settings(refresh_ttl="7d", refresh_absolute_ttl="7d")
    assert settings.refresh_absolute_ttl == settings.refresh_ttl


def test_secrets_are_hidden_from_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    secret, kek = secrets.token_urlsafe(32), secrets.token_urlsafe(36)
    monkeypatch.setenv("JWTAUTH_SECRET", secret)
    settings = Settings(algorithm="HS256", key_encryption_key=kek)
    assert isinstance(settings.secret, SecretStr)
    assert isinstance(settings.key_encryption_key, SecretStr)
    assert settings.secret.get_secret_value() == secret
    assert settings.key_encryption_key.get_secret_value() == kek
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.secret)):
        assert secret not in shown and kek not in shown
