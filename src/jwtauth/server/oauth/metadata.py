"""The discovery document: OpenID Connect Discovery 1.0 section 3 and RFC 8414 section 2,
one document for both well-known paths (API.md).

Honest: it lists only what this server does, and every URL is built from the issuer,
never from a request's Host header. Authlib's ``OpenIDProviderMetadata.validate()``
checks the result in the tests (an implementation independent of this one); the
server does not depend on Authlib for a dict of constants.
"""

from __future__ import annotations

from typing import Any

from .config import OAuthConfig
from .scopes import STANDARD_SCOPES

CLAIMS_SUPPORTED = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr",
    "preferred_username", "email", "email_verified",
)
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def discovery_document(
    config: OAuthConfig, *, extra_scopes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``extra_scopes``: scopes beyond the OpenID ones that some client may ask for."""
    paths = config.endpoints
    doc: dict[str, Any] = {
        "issuer": config.issuer,
        "authorization_endpoint": config.url(paths.authorization),
        "token_endpoint": config.url(paths.token),
        "userinfo_endpoint": config.url(paths.userinfo),
        "jwks_uri": config.url(paths.jwks),
        "revocation_endpoint": config.url(paths.revocation),
        "introspection_endpoint": config.url(paths.introspection),
        "end_session_endpoint": config.url(paths.end_session),
        "scopes_supported": list(dict.fromkeys((*STANDARD_SCOPES, *extra_scopes))),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(config.id_token_algs),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ["aal1", "aal2"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
    }
    if config.dynamic_registration:
        doc["registration_endpoint"] = config.url(paths.registration)
    return doc
