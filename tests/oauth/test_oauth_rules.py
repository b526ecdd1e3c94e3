"""The core's pure rules, each held against an independent implementation where one
exists: PKCE against Authlib's RFC 7636 helpers, client metadata against Authlib's
RFC 7591 validator, the discovery document against Authlib's RFC 8414 / OIDC Discovery
models; URIs, scopes, client authentication, issuer rules and error shapes."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from authlib.oauth2.rfc7591 import ClientMetadataClaims
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from oauth_world import make_config

from jwtauth import ConfigError
from jwtauth.server.oauth import pkce
from jwtauth.server.oauth.client_auth import ClientDirectory, authenticate_client
from jwtauth.server.oauth.clients import (
    hash_client_secret,
    new_client_id,
    secret_matches,
    validate_metadata,
)
from jwtauth.server.oauth.errors import (
    InvalidClientError,
    InvalidClientMetadataError,
    InvalidGrantError,
    InvalidRedirectUriError,
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
)
from jwtauth.server.oauth.metadata import discovery_document
from jwtauth.server.oauth.ports import StoredClient
from jwtauth.server.oauth.responses import error_parts
from jwtauth.server.oauth.scopes import parse_scope
from jwtauth.server.oauth.uris import (
    URIRuleError,
    match_redirect_uri,
    validate_backchannel_uri,
    validate_redirect_uri,
)

# -- PKCE --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [43, 64, 128])
def test_s256_matches_authlib(length: int) -> None:
    verifier = secrets.token_urlsafe(96)[:length]
    assert pkce.s256(verifier) == create_s256_code_challenge(verifier)
    pkce.verify(verifier, create_s256_code_challenge(verifier))


def test_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("verifier", [None, "", "a" * 42, "a" * 129, "a" * 42 + "+"])
def test_malformed_verifiers_are_refused(verifier: str | None) -> None:
    with pytest.raises(InvalidGrantError):
        pkce.verify(verifier, pkce.s256("a" * 43))


def test_challenge_rules() -> None:
    good = pkce.s256("a" * 43)
    assert pkce.validate_challenge(good, "S256") == good
    for challenge, method in ((good, "plain"), (good, None), (None, "S256"), ("x" * 42, "S256"),
                              (good + "A", "S256")):
        with pytest.raises(InvalidRequestError):
            pkce.validate_challenge(challenge, method)


# -- URIs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("uri", "kind", "loopback", "ok"), [
    ("https://app.example.test/cb", "web", False, True),
    ("https://app.example.test/cb?x=1", "web", False, True),
    ("http://app.example.test/cb", "web", False, False),
    ("http://127.0.0.1/cb", "web", False, False),
    ("http://127.0.0.1/cb", "web", True, True),
    ("http://127.0.0.1:8080/cb", "native", False, True),
    ("http://[::1]/cb", "native", False, True),
    ("http://localhost/cb", "native", False, True),
    ("http://10.0.0.1/cb", "native", False, False),
    ("https://app.example.test/cb#frag", "web", False, False),
    ("https://user:pw@app.example.test/cb", "web", False, False),
    ("com.example.app:/cb", "native", False, False),
    ("javascript:alert(1)", "web", True, False),
    ("https://app.example.test/c b", "web", False, False),
    ("/relative", "web", False, False),
    ("https://app.example.test:99999/cb", "web", False, False),
])
def test_redirect_uri_registration(uri: str, kind: Any, loopback: bool, ok: bool) -> None:
    if ok:
        assert validate_redirect_uri(uri, application_type=kind, allow_loopback=loopback) == uri
    else:
        with pytest.raises(URIRuleError):
            validate_redirect_uri(uri, application_type=kind, allow_loopback=loopback)


def test_loopback_port_variance_is_for_native_clients_only() -> None:
    registered = ["http://127.0.0.1/cb", "http://[::1]:80/cb"]
    assert match_redirect_uri("http://127.0.0.1:5000/cb", registered,
                              application_type="native") == "http://127.0.0.1:5000/cb"
    assert match_redirect_uri("http://[::1]:5000/cb", registered,
                              application_type="native") == "http://[::1]:5000/cb"
    assert match_redirect_uri("http://127.0.0.1:5000/cb", registered,
                              application_type="web") is None
    for bad in ("http://127.0.0.1:5000/cb2", "http://127.0.0.1:5000/cb?x", "http://[::2]:1/cb",
                "http://127.0.0.1:5000/CB", "http://127.0.0.1:x/cb"):
        assert match_redirect_uri(bad, registered, application_type="native") is None


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://rp.example.test/bc", True),
    ("http://rp.example.test/bc", False),
    ("https://127.0.0.1/bc", False),
    ("https://10.1.2.3/bc", False),
    ("https://169.254.169.254/latest/meta-data", False),
    ("https://[::1]/bc", False),
    ("https://[::ffff:127.0.0.1]/bc", False),
    ("https://localhost/bc", False),
    ("https://93.184.215.14/bc", True),
])
def test_backchannel_uri_registration(uri: str, ok: bool) -> None:
    if ok:
        assert validate_backchannel_uri(uri, allow_loopback=False) == uri
    else:
        with pytest.raises(URIRuleError):
            validate_backchannel_uri(uri, allow_loopback=False)
    assert validate_backchannel_uri("http://127.0.0.1:9/bc", allow_loopback=True)


# -- scopes ------------------------------------------------------------------------------


def test_scope_syntax() -> None:
    assert parse_scope("openid  email".replace("  ", " ")) == ("openid", "email")
    assert parse_scope("a a b") == ("a", "b")
    assert parse_scope(None) == () == parse_scope("")
    for bad in ("openid  email", " openid", 'a"b', "a\\b", "é", "a\tb", " ".join(["s"] * 51)):
        with pytest.raises(InvalidScopeError):
            parse_scope(bad)


# -- client metadata ---------------------------------------------------------------------

RULES: dict[str, Any] = {"trusted": True, "allow_loopback": False,
                         "id_token_algs": ("RS256", "ES256")}
GOOD = {
    "client_name": "App", "redirect_uris": ["https://app.example.test/cb"],
    "grant_types": ["authorization_code", "refresh_token"], "scope": "api:read api:write",
    "token_endpoint_auth_method": "client_secret_post", "logo_uri": "https://app.example.test/l",
    "post_logout_redirect_uris": ["https://app.example.test/bye"],
    "backchannel_logout_uri": "https://app.example.test/bc", "unknown_member": {"x": 1},
}


def test_good_metadata_passes_here_and_in_authlib() -> None:
    metadata = validate_metadata(GOOD, client_id="c1", **RULES)
    public = metadata.public()
    assert public["client_id"] == "c1" and public["scope"] == "api:read api:write"
    assert public["response_types"] == ["code"] and public["application_type"] == "web"
    assert "unknown_member" not in public  # RFC 7591 2: ignored
    ClientMetadataClaims(public, {}).validate()
    assert validate_metadata(public, client_id="c1", **RULES) == metadata  # stable


@pytest.mark.parametrize(("change", "field"), [
    ({"redirect_uris": ["http://app.example.test/cb"]}, "redirect_uris"),
    ({"redirect_uris": []}, "redirect_uris"),
    ({"redirect_uris": "https://app.example.test/cb"}, "redirect_uris"),
    ({"grant_types": ["implicit"]}, "grant_types"),
    ({"grant_types": ["password"]}, "grant_types"),
    ({"response_types": ["token"]}, "response_types"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
    ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"],
      "redirect_uris": []}, "grant_types"),
    ({"grant_types": ["refresh_token"]}, "grant_types"),
    ({"application_type": "desktop"}, "application_type"),
    ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
    ({"id_token_signed_response_alg": "HS256"}, "id_token_signed_response_alg"),
    ({"backchannel_logout_uri": "https://10.0.0.5/bc"}, "backchannel_logout_uri"),
    ({"post_logout_redirect_uris": ["https://app.example.test/b#x"]}, "post_logout_redirect_uris"),
    ({"scope": "bad  scope"}, "scope"),
    ({"skip_consent": "yes"}, "skip_consent"),
    ({"resources": ["/relative"]}, "resources"),
    ({"client_name": ""}, "client_name"),
])
def test_bad_metadata_is_refused_with_the_member_named(change: dict[str, Any],
                                                       field: str) -> None:
    with pytest.raises(InvalidClientMetadataError) as caught:
        validate_metadata({**GOOD, **change}, client_id="c1", **RULES)
    assert caught.value.field == field


def test_redirect_errors_are_invalid_redirect_uri() -> None:
    with pytest.raises(InvalidRedirectUriError):
        validate_metadata({**GOOD, "redirect_uris": ["ftp://x/"]}, client_id="c", **RULES)


def test_only_an_admin_sets_skip_consent_or_resources() -> None:
    for member in ({"skip_consent": True}, {"resources": ["https://api.example.test"]}):
        validate_metadata({**GOOD, **member}, client_id="c", **RULES)
        with pytest.raises(InvalidClientMetadataError):
            validate_metadata({**GOOD, **member}, client_id="c", **{**RULES, "trusted": False})


def test_client_ids_never_look_like_user_ids() -> None:
    assert all(len(new_client_id()) == 24 for _ in range(50))


def test_secrets_compare_by_hash() -> None:
    secret = secrets.token_urlsafe(32)
    stored = hash_client_secret(secret)
    assert stored != secret and len(stored) == 64
    assert secret_matches(secret, stored)
    assert not secret_matches(secret + "x", stored)
    assert not secret_matches(secret, None)


# -- client authentication -------------------------------------------------------------


class OneClient:
    def __init__(self, stored: StoredClient) -> None:
        self.stored = stored

    async def get(self, client_id: str) -> StoredClient | None:
        return self.stored if client_id == self.stored.metadata.client_id else None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_credentials_are_form_decoded() -> None:
    from datetime import UTC, datetime

    metadata = validate_metadata({**GOOD, "token_endpoint_auth_method": "client_secret_basic"},
                                 client_id="id:with%", **RULES)
    secret = "s3cret+/="
    directory = ClientDirectory(OneClient(StoredClient(  # type: ignore[arg-type]
        metadata, hash_client_secret(secret), datetime.now(UTC))), ttl=0)
    # RFC 6749 2.3.1: both parts form-urlencoded, then joined with ':'.
    found = await authenticate_client(directory, authorization=basic("id%3Awith%25",
                                      "s3cret%2B%2F%3D"), form={})
    assert found.metadata.client_id == "id:with%"
    for header in (basic("id%3Awith%25", secret), "Basic !!!", "Basic " +
                   base64.b64encode(b"no-colon").decode(), basic("other", "s3cret%2B%2F%3D")):
        with pytest.raises(InvalidClientError):
            await authenticate_client(directory, authorization=header, form={})


# -- discovery -----------------------------------------------------------------------------


@pytest.mark.parametrize("dynamic", [False, True])
def test_discovery_document_is_valid_and_built_from_the_issuer(dynamic: bool) -> None:
    config = make_config(issuer="https://id.example.test", dynamic_registration=dynamic)
    doc = discovery_document(config, extra_scopes=("api:read",))
    OpenIDProviderMetadata(doc).validate()
    AuthorizationServerMetadata(doc).validate()
    for name, value in doc.items():
        if name.endswith(("_endpoint", "_uri")):
            assert value.startswith("https://id.example.test/"), name
    assert ("registration_endpoint" in doc) is dynamic
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "api:read" in doc["scopes_supported"]


@pytest.mark.parametrize("alg", ["RS256", "HS256", "EdDSA"])
def test_id_token_algorithms_follow_the_server_key(alg: str) -> None:
    algs = make_config(server_alg=alg).id_token_algs
    assert algs[0] == "RS256" and "HS256" not in algs


@pytest.mark.parametrize(("issuer", "ok"), [
    ("https://id.example.test", True), ("https://id.example.test/tenant", True),
    ("http://127.0.0.1:8000", True), ("http://localhost:8000", True), ("http://[::1]:80", True),
    ("http://id.example.test", False), ("https://id.example.test/", False),
    ("https://id.example.test?x=1", False), ("https://id.example.test#f", False),
    ("ftp://id.example.test", False),
])
def test_issuer_rules(issuer: str, ok: bool) -> None:
    if ok:
        assert make_config(issuer=issuer).issuer == issuer
    else:
        with pytest.raises(ConfigError):
            make_config(issuer=issuer)


def test_csrf_secret_must_be_long() -> None:
    with pytest.raises(ConfigError):
        make_config(csrf_secret=b"short")


# -- error shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "status"), [
    (InvalidRequestError(), 400), (InvalidGrantError(), 400), (InvalidScopeError(), 400),
    (InvalidClientError(), 401), (InvalidClientMetadataError("x", field="scope"), 400),
])
def test_error_parts_follow_rfc6749_5_2(error: OAuthError, status: int) -> None:
    got_status, body, headers = error_parts(error, realm="jwtauth")
    assert got_status == status
    assert body["error"] == error.code
    assert body["error_description"] == body["message"] == error.message
    assert headers["Cache-Control"] == "no-store"
    assert ("WWW-Authenticate" in headers) is (status == 401)
    if isinstance(error, InvalidClientMetadataError):
        assert body["field"] == "scope"
