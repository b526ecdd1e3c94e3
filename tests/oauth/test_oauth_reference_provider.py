"""The client scripts of interop/oidc/ against a certified provider (issue 14, point 3).

Node's ``oidc-provider`` (pinned in interop/package-lock.json), configured like jwtauth
(interop/oidc/provider.mjs), runs as a real process; ``flows.mjs`` drives every flow
through discovery with ``openid-client``, the sign-in and consent pages in Debian's
Chromium. What the reference answers here is the baseline that phase 2 compares jwtauth
with, step by step; src/jwtauth/server/oauth/README.md lists the known differences.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth_kit import BackchannelReceiver, Reference, backchannel, node, reference, run_flows

__all__ = ["backchannel", "node", "reference"]  # fixtures, used by name

REQUIRED_DISCOVERY = {
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
    "revocation_endpoint", "introspection_endpoint", "end_session_endpoint",
    "response_types_supported", "grant_types_supported", "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported", "subject_types_supported",
    "id_token_signing_alg_values_supported", "scopes_supported", "claims_supported",
    "authorization_response_iss_parameter_supported", "backchannel_logout_supported",
    "backchannel_logout_session_supported",
}
ID_TOKEN_CLAIMS = {
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr",
    "preferred_username", "email", "email_verified",
}


@pytest.fixture(scope="module")
def flows(node: str, reference: Reference) -> dict[str, Any]:
    result = run_flows(node, reference.flow_request())
    broken = {name: step["failed"] for name, step in result.items() if "failed" in step}
    assert not broken, broken
    return result


def test_discovery_is_complete_and_valid(flows: dict[str, Any], reference: Reference) -> None:
    doc = flows["discovery"]
    assert REQUIRED_DISCOVERY <= doc.keys()
    assert doc["issuer"] == reference.issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        doc["grant_types_supported"]
    )
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    # Authlib's models, an implementation independent of both providers.
    OpenIDProviderMetadata(doc).validate()


def test_code_flow_signs_in_by_form_then_consents(flows: dict[str, Any],
                                                  reference: Reference) -> None:
    step = flows["code"]
    assert step["callback"]["pages"] == ["signin", "consent"]
    assert step["callback"]["state_matches"]
    assert step["callback"]["iss"] == reference.issuer  # RFC 9207
    tokens = step["tokens"]
    assert tokens["has_refresh_token"]  # a confidential client
    id_token = tokens["id_token"]
    assert id_token["header"]["alg"] == "RS256"
    assert ID_TOKEN_CLAIMS <= id_token["claims"].keys()
    assert id_token["claims"]["aud"] == reference.clients["confidential"]["client_id"]
    assert id_token["claims"]["amr"] == ["pwd"]
    assert id_token["claims"]["acr"] == "aal1"


def test_signed_in_browser_is_not_asked_again(flows: dict[str, Any]) -> None:
    assert flows["silent"]["pages"] == []
    assert flows["silent"]["params"] == ["code", "iss", "state"]
    prompts = flows["prompts"]
    assert prompts["prompt_login"]["pages"] == ["signin"]
    assert prompts["max_age_0"]["pages"] == ["signin"]
    assert prompts["prompt_consent"]["pages"] == ["consent"]
    assert prompts["id_token_hint"]["pages"] == []
    assert prompts["id_token_hint"]["error"] is None
    # A new sign-in moves auth_time on.
    assert prompts["prompt_login"]["auth_time"] >= flows["code"]["tokens"]["id_token"][
        "claims"]["auth_time"]


def test_refresh_rotates_and_a_reused_token_ends_the_family(flows: dict[str, Any]) -> None:
    step = flows["refresh"]
    assert step["rotated"]
    assert step["reuse_of_rotated"]["error"] == "invalid_grant"
    assert step["successor_after_reuse"]["error"] == "invalid_grant"


def test_userinfo_by_get_and_post(flows: dict[str, Any]) -> None:
    step = flows["userinfo"]
    assert step["sub_matches"]
    assert step["post"]["status"] == 200
    assert step["post"]["body"] == step["get"]
    assert {"sub", "preferred_username", "email", "email_verified"} <= step["get"].keys()


def test_introspection(flows: dict[str, Any], reference: Reference) -> None:
    step = flows["introspection"]
    assert step["access"]["active"] is True
    assert step["access"]["client_id"] == reference.clients["confidential"]["client_id"]
    assert step["refresh"]["active"] is True
    assert step["unknown"] == {"active": False}
    assert step["wrong_secret"]["error"] == "invalid_client"
    assert step["wrong_secret"]["status"] == 401
    assert step["wrong_secret"]["www_authenticate"]


def test_revocation(flows: dict[str, Any]) -> None:
    step = flows["revocation"]
    assert step["access_active_after"] is False
    assert step["refresh_after"]["error"] == "invalid_grant"
    assert step["unknown_token"] == {"ok": True}  # RFC 7009 2.2: 200 for an unknown token


def test_client_credentials(flows: dict[str, Any], reference: Reference) -> None:
    step = flows["client_credentials"]
    web = reference.clients["confidential"]
    for tokens in (step["plain"], step["targeted"], flows["client_secret_post"]):
        assert not tokens["has_refresh_token"]
        assert tokens["scope"] == "api:read"
    claims = step["targeted"]["access_token"]["claims"]
    assert step["targeted"]["access_token"]["header"]["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == web["client_id"]
    assert claims["aud"] == web["resources"][0]  # RFC 8707
    assert "sid" not in claims
    assert step["unregistered_resource"]["error"] == "invalid_target"


def test_public_native_client(flows: dict[str, Any]) -> None:
    step = flows["public_client"]
    assert step["callback"]["arrived"]  # a loopback redirect URI on another port
    assert step["tokens"]["has_refresh_token"]  # offline_access, consented
    assert step["reuse_of_rotated"]["error"] == "invalid_grant"
    assert step["successor_after_reuse"]["error"] == "invalid_grant"
    assert step["client_credentials"]["error"] in ("unauthorized_client", "invalid_request")


def test_rp_initiated_logout_ends_the_session_and_notifies_the_client(
    flows: dict[str, Any], reference: Reference, backchannel: BackchannelReceiver
) -> None:
    step = flows["logout"]
    assert step["arrived"] and step["state_matches"]
    assert step["silent_after"]["error"] == "login_required"
    assert backchannel.received.wait(10), "no back-channel logout token arrived"
    keys = KeySet.import_key_set(httpx.get(flows["discovery"]["jwks_uri"]).json())
    token = jwt.decode(backchannel.tokens[-1], keys, algorithms=["RS256"])
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == reference.issuer
    assert claims["aud"] == reference.clients["confidential"]["client_id"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims
    assert {"iat", "exp", "jti", "sid", "sub"} <= claims.keys()


# What the reference answers to the bad requests of issue 14 point 3; jwtauth must
# answer the same, except where README.md's list of differences says why not.
BAD_REQUESTS = {
    "wrong_redirect_uri": "invalid_redirect_uri",  # an error page: no redirect
    "pkce_plain": "invalid_request",
    "pkce_missing": "invalid_request",
    "scope_not_allowed": "invalid_scope",
    "unknown_response_type": "unsupported_response_type",
    "reused_code": "invalid_grant",
    "missing_verifier": "invalid_grant",
    "wrong_verifier": "invalid_grant",
    "code_of_other_client": "invalid_grant",
    "wrong_client_secret": "invalid_client",
    "unknown_grant": "unsupported_grant_type",
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request(flows: dict[str, Any], case: str) -> None:
    answer = flows["bad_requests"][case]
    assert answer.get("error") == BAD_REQUESTS[case], answer


def test_bad_request_details(flows: dict[str, Any], reference: Reference) -> None:
    bad = flows["bad_requests"]
    assert bad["wrong_redirect_uri"]["redirected_to"] is None
    assert bad["wrong_redirect_uri"]["status"] == 400
    for case in ("pkce_plain", "pkce_missing", "unknown_response_type"):
        assert bad[case]["state"] == "st-1" and bad[case]["iss"] == reference.issuer
    assert bad["reused_code"]["first_access_active_after"] is False
    assert bad["wrong_client_secret"]["status"] == 401
    assert bad["wrong_client_secret"]["www_authenticate"]
    # oidc-provider ignores scopes it does not know (RFC 6749 3.3 allows it); jwtauth
    # refuses them (README.md, differences).
    assert bad["unknown_scope"] == {"ok": {"scope": None}}
    assert bad["unknown_scope_authorize"]["error"] is None


def test_reference_logged_no_server_error(flows: dict[str, Any], reference: Reference) -> None:
    assert flows
    assert not [line for line in reference.errors if "server_error" in line], reference.errors
