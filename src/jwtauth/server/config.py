"""Settings, read from ``JWTAUTH_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..errors import ConfigError

Algorithm = Literal["ES256", "RS256", "EdDSA", "HS256"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
# An origin is scheme://host[:port] and nothing more (RFC 6454); no "*", "null" or path.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int:
    """Whole seconds from ``900``, ``"900"``, ``"15m"``, ``"12h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a number with s, m, h or d")
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (whole seconds, or a number with s/m/h/d)")
    return int(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]


def _split_origins(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the server. The README's configuration table documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="JWTAUTH_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    database_url: str = "sqlite:///jwtauth.db"
    database_schema: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    redis_url: str | None = None
    # Every key this server uses in Redis starts with it: several deployments (or test
    # runs) can share one Redis database.
    redis_prefix: str = Field("jwtauth:", pattern=r"^[A-Za-z0-9_:.-]{1,64}$")
    public_url: str | None = None
    issuer: str | None = None
    audience: str = "jwtauth"
    algorithm: Algorithm = "ES256"
    secret: SecretStr | None = None
    key_encryption_key: SecretStr | None = None
    key_rotation: Duration = 0
    key_rotation_lead: Duration = 600
    # Audit rows older than this are deleted by the maintenance loop; 0 keeps them all.
    audit_retention: Duration = 365 * 86400
    access_ttl: Duration = 900
    refresh_ttl: Duration = 7 * 86400
    refresh_absolute_ttl: Duration = 30 * 86400
    refresh_reuse_grace: Duration = 0
    clock_skew: Duration = 30
    cookie_secure: bool = True
    allowed_origins: Annotated[list[str], NoDecode, BeforeValidator(_split_origins)] = []
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_cost: int = Field(19456, ge=8 * 1024)
    argon2_parallelism: int = Field(1, ge=1)
    hash_threads: int = Field(0, ge=0)
    login_max_failures: int = Field(5, ge=1)
    login_backoff_base: Duration = 1
    login_backoff_max: Duration = 900
    login_address_max_failures: int = Field(100, ge=1)
    login_address_window: Duration = 300
    register_max_per_address: int = Field(50, ge=1)
    register_window: Duration = 3600
    revocation_poll_interval: float = Field(0.25, gt=0, le=60)
    # Refuse tokens when neither the database log nor Redis has confirmed the revocation
    # state for this long (a process cut off from both); 0 = never.
    revocation_max_staleness: Duration = 30
    # 2 MiB: the largest post (100,000 characters) sent as \u-escaped JSON is ~1.2 MB.
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(16 * 1024, ge=4096)
    # A request's line and headers, then its body, must arrive within these (web/deadlines.py):
    # a connection that sends nothing, or a trickle, is closed instead of held for good.
    header_timeout: Duration = Field(10, ge=1)
    body_timeout: Duration = Field(30, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # Addresses of reverse proxies whose X-Forwarded-For / -Proto are believed; without
    # it every client behind a proxy shares the proxy's address in the login limits.
    trusted_proxies: str | None = Field(None, pattern=r"^[0-9A-Fa-f.:/, *]+$")

    @field_validator("public_url", "issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("allowed_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        # These origins get credentialed CORS and the refresh cookie: a wildcard or a
        # typo must stop the server, not widen or silently void the allowlist.
        origins = [origin.lower() for origin in value]
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"allowed origin {origin!r} is not scheme://host[:port] (no '*', no path)"
                )
        return origins

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.access_ttl < 1 or self.refresh_ttl < 1:
            raise ValueError("access_ttl and refresh_ttl must be at least 1 second")
        if self.refresh_absolute_ttl < self.refresh_ttl:
            raise ValueError("refresh_absolute_ttl must not be shorter than refresh_ttl")
        return self

    @property
    def configured_issuer(self) -> str | None:
        """The issuer the operator chose (API.md: JWTAUTH_ISSUER, else the public URL)."""
        return self.issuer or self.public_url

    @property
    def effective_issuer(self) -> str:
        """The configured issuer, else this server's own address: the first server on a
        database records it there, and every later one adopts the recorded value."""
        return self.configured_issuer or f"http://{self.host}:{self.port}"

    @property
    def revocation_ttl(self) -> int:
        """How long a revocation must be remembered: the life of any token it kills."""
        return self.access_ttl + self.clock_skew

    @property
    def revocation_staleness_bound(self) -> float | None:
        """Seconds a process may go without confirming its revocation state before it
        refuses tokens, None when turned off. Never less than a few poll intervals, nor
        than 3 s: a healthy Redis follower confirms about once a second."""
        if not self.revocation_max_staleness:
            return None
        return max(float(self.revocation_max_staleness), 4 * self.revocation_poll_interval, 3.0)

    def validate_for_serving(self) -> None:
        """Refuse to start on a configuration that would be unsafe (RFC 8725 section 3.5)."""
        if self.algorithm == "HS256":
            secret = self.secret.get_secret_value().encode() if self.secret else b""
            if len(secret) < 32:
                raise ConfigError(
                    "JWTAUTH_ALGORITHM=HS256 needs JWTAUTH_SECRET of at least 32 bytes; "
                    "generate one with `jwtauth secret`."
                )
            if len(set(secret)) < 8:
                raise ConfigError("JWTAUTH_SECRET is too repetitive to be a secret.")
        if self.key_encryption_key is not None:
            if len(self.key_encryption_key.get_secret_value().encode()) < 32:
                raise ConfigError("JWTAUTH_KEY_ENCRYPTION_KEY must be at least 32 bytes.")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with explicit overrides on top."""
    try:
        return Settings(**overrides)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
