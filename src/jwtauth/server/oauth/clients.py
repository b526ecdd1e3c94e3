"""Client metadata (RFC 7591 section 2, OpenID Connect Registration 1.0 section 2) and
client secrets.

``validate_metadata`` turns the JSON an admin (or, when enabled, anyone through RFC 7591
dynamic registration) sends into a ``ClientMetadata``, refusing what this server does
not do. Unknown members are ignored, as RFC 7591 section 2 requires. ``skip_consent``
and ``resources`` are this server's own and only an admin may set them (``trusted``): a
self-registered client must neither skip the user's consent nor claim another
service's audience.

Why not Authlib's ``ClientMetadataClaims``: it checks that URIs are URIs and fills
defaults, while the rules here are this server's (https, loopback, native clients,
which grant goes with which auth method); the tests run its validator beside ours.

Secrets: 256 random bits, shown once, stored as SHA-256 (like refresh tokens: a hash of
a random secret needs no slow KDF), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from . import scopes as scope_rules
from .errors import InvalidClientMetadataError, InvalidRedirectUriError
from .uris import (
    ApplicationType,
    URIRuleError,
    validate_backchannel_uri,
    validate_redirect_uri,
)

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES: tuple[GrantType, ...] = ("authorization_code", "refresh_token", "client_credentials")
MAX_URIS = 20


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """A client as registered. ``public()`` is what the admin API and CLI show."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[GrantType, ...]
    token_endpoint_auth_method: AuthMethod
    application_type: ApplicationType
    scope: tuple[str, ...]  # the extra scopes it may ask for, beyond STANDARD_SCOPES
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = True
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 - an algorithm name
    skip_consent: bool = False
    resources: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ("code",)
    extra: Mapping[str, Any] = field(default_factory=dict)  # client_uri, logo_uri, ...

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method name

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def allowed_scopes(self) -> frozenset[str]:
        return scope_rules.allowed_scopes(self.scope)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        data["scope"] = scope_rules.join(self.scope)
        if not self.scope:
            del data["scope"]
        return {**extra, **{k: v for k, v in data.items() if v is not None}}


_OPTIONAL_STRINGS = ("client_uri", "logo_uri", "policy_uri", "tos_uri", "software_id",
                     "software_version")


def _string(data: Mapping[str, Any], name: str, *, limit: int = 200) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidClientMetadataError(f"{name} must be a string of 1-{limit} characters.",
                                         field=name)
    return value.strip()


def _strings(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadataError(f"{name} must be an array of strings.", field=name)
    if len(value) > MAX_URIS:
        raise InvalidClientMetadataError(f"{name} has more than {MAX_URIS} entries.", field=name)
    return tuple(dict.fromkeys(value))


def _choice(data: Mapping[str, Any], name: str, allowed: Iterable[str], default: str) -> str:
    value = data.get(name, default)
    if value not in tuple(allowed):
        raise InvalidClientMetadataError(
            f"{name} must be one of: {', '.join(allowed)}.", field=name
        )
    return cast(str, value)


def _flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidClientMetadataError(f"{name} must be true or false.", field=name)
    return value


def _resource(uri: str) -> str:
    # RFC 8707 section 2: an absolute URI without a fragment.
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc or "#" in uri or len(uri) > 2000:
        raise InvalidClientMetadataError(
            "resources must be absolute URIs without a fragment.", field="resources"
        )
    return uri


def validate_metadata(
    data: Mapping[str, Any],
    *,
    client_id: str,
    trusted: bool,
    allow_loopback: bool,
    id_token_algs: Iterable[str],
) -> ClientMetadata:
    """A ``ClientMetadata`` from registration JSON; ``InvalidClientMetadataError`` or
    ``InvalidRedirectUriError`` (with ``field``) for anything refused."""
    if not isinstance(data, Mapping):
        raise InvalidClientMetadataError("Client metadata is a JSON object.")
    application_type = cast(
        ApplicationType, _choice(data, "application_type", ("web", "native"), "web")
    )
    method = cast(AuthMethod, _choice(
        data, "token_endpoint_auth_method", AUTH_METHODS, "client_secret_basic"
    ))
    grant_types = _strings(data, "grant_types") or ("authorization_code",)
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise InvalidClientMetadataError(
                f"grant_types may hold only {', '.join(GRANT_TYPES)}.", field="grant_types"
            )
    response_types = _strings(data, "response_types") or (
        ("code",) if "authorization_code" in grant_types else ()
    )
    # OIDC Registration 2: response_types and grant_types must agree; only code exists here.
    if set(response_types) - {"code"} or (
        ("code" in response_types) != ("authorization_code" in grant_types)
    ):
        raise InvalidClientMetadataError(
            "response_types must be [\"code\"] exactly when grant_types has authorization_code.",
            field="response_types",
        )
    if method == "none" and "client_credentials" in grant_types:
        raise InvalidClientMetadataError(
            "A public client (token_endpoint_auth_method none) cannot use client_credentials.",
            field="grant_types",
        )
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise InvalidClientMetadataError(
            "refresh_token goes with authorization_code.", field="grant_types"
        )
    redirect_uris = _uris(data, "redirect_uris", application_type, allow_loopback)
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidRedirectUriError(
            "redirect_uris is required for authorization_code.", field="redirect_uris"
        )
    post_logout = _uris(data, "post_logout_redirect_uris", application_type, allow_loopback)
    backchannel = _string(data, "backchannel_logout_uri", limit=2000)
    if backchannel is not None:
        try:
            validate_backchannel_uri(backchannel, allow_loopback=allow_loopback)
        except URIRuleError as exc:
            raise InvalidClientMetadataError(
                f"backchannel_logout_uri {exc}.", field="backchannel_logout_uri"
            ) from exc
    algs = tuple(id_token_algs)
    alg = _choice(data, "id_token_signed_response_alg", algs, "RS256")
    skip_consent = _flag(data, "skip_consent", False)
    resources = tuple(_resource(uri) for uri in _strings(data, "resources"))
    if not trusted and (skip_consent or resources):
        raise InvalidClientMetadataError(
            "skip_consent and resources are set by an administrator only.",
            field="skip_consent" if skip_consent else "resources",
        )
    name = _string(data, "client_name") or client_id
    extra = {k: v for k in _OPTIONAL_STRINGS if (v := _string(data, k, limit=2000))}
    return ClientMetadata(
        client_id=client_id,
        client_name=name,
        redirect_uris=redirect_uris,
        grant_types=cast(tuple[GrantType, ...], grant_types),
        token_endpoint_auth_method=method,
        application_type=application_type,
        scope=scope_rules.validate_registered_scope(_string(data, "scope", limit=2000)),
        post_logout_redirect_uris=post_logout,
        backchannel_logout_uri=backchannel,
        backchannel_logout_session_required=_flag(
            data, "backchannel_logout_session_required", True
        ),
        id_token_signed_response_alg=alg,
        skip_consent=skip_consent,
        resources=resources,
        response_types=response_types,
        extra=extra,
    )


def _uris(
    data: Mapping[str, Any], name: str, application_type: ApplicationType, allow_loopback: bool
) -> tuple[str, ...]:
    uris = _strings(data, name)
    for uri in uris:
        try:
            validate_redirect_uri(
                uri, application_type=application_type, allow_loopback=allow_loopback
            )
        except URIRuleError as exc:
            raise InvalidRedirectUriError(f"{name}: {uri!r} {exc}.", field=name) from exc
    return uris


def update_metadata(
    current: ClientMetadata, changes: Mapping[str, Any], **rules: Any
) -> ClientMetadata:
    """PATCH: the current metadata with ``changes`` applied, validated whole again."""
    merged = {**current.public(), **changes}
    merged.pop("client_id", None)
    return validate_metadata(merged, client_id=current.client_id, **rules)


def new_client_id() -> str:
    # 24 characters: never the shape of a user id (a 36-character UUID), so a client's
    # tokens (sub = client_id) and a user's can be revoked apart by subject.
    return secrets.token_urlsafe(18)


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Compared against when the client is unknown, so the work does not depend on it.
_DUMMY_HASH = hash_client_secret(secrets.token_urlsafe(32))


def secret_matches(presented: str, stored_hash: str | None) -> bool:
    """Constant time in the secret; the same work whether or not a hash is stored."""
    actual = hash_client_secret(presented)
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    return hmac.compare_digest(actual, expected) and stored_hash is not None
