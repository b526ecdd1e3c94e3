"""The provider's settings, as the core sees them (the wiring phase fills this from
``jwtauth.server.config.Settings``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ...errors import ConfigError
from .uris import LOOPBACK_HOSTS


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Paths under the issuer. Tests follow discovery only, so these are the server's."""

    authorization: str = "/oauth/authorize"
    token: str = "/oauth/token"  # noqa: S105 - a path
    userinfo: str = "/oauth/userinfo"
    jwks: str = "/.well-known/jwks.json"
    revocation: str = "/oauth/revoke"
    introspection: str = "/oauth/introspect"
    end_session: str = "/oauth/logout"
    registration: str = "/oauth/register"


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    issuer: str
    audience: str
    # Binds consent forms to the browser's sign-in session (CSRF). Shared by every
    # instance: the wiring keeps it in the database, like the default issuer.
    csrf_secret: bytes = field(repr=False)
    server_alg: str = "ES256"
    access_ttl: int = 900
    id_token_ttl: int = 900
    code_ttl: int = 60  # API.md: codes live 60 s
    logout_token_ttl: int = 120
    allow_loopback: bool = False  # JWTAUTH_OAUTH_ALLOW_LOOPBACK
    dynamic_registration: bool = False  # JWTAUTH_OAUTH_DYNAMIC_REGISTRATION
    endpoints: Endpoints = field(default_factory=Endpoints)

    def __post_init__(self) -> None:
        validate_issuer(self.issuer)
        if len(self.csrf_secret) < 32:
            raise ConfigError("the OAuth CSRF secret must be at least 32 bytes")

    @property
    def id_token_algs(self) -> tuple[str, ...]:
        """RS256 (OIDC Registration's default) and the server's own asymmetric one."""
        algs = ["RS256"]
        if self.server_alg not in ("RS256", "HS256"):
            algs.append(self.server_alg)
        return tuple(algs)

    def url(self, path: str) -> str:
        return self.issuer + path


def validate_issuer(issuer: str) -> None:
    """https, or http on loopback for development (RFC 9207 section 2.4, RFC 8414 2);
    no query or fragment; no trailing slash (URLs are built by appending paths)."""
    parts = urlsplit(issuer)
    host = (parts.hostname or "").lower()
    if parts.query or parts.fragment or issuer.endswith("/") or not host:
        raise ConfigError(f"issuer {issuer!r}: an https URL without query, fragment or '/'")
    loopback = host in {h.strip("[]") for h in LOOPBACK_HOSTS}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(f"issuer {issuer!r} must be https (http only on loopback)")
