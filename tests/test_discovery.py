"""API.md "Discovery": the JWKS, the OpenID configuration and the health check, checked
with an independent JOSE implementation (PyJWT) the way an outside service would."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from conftest import Api, AppFactory

ISSUER = "https://jwtauth.test"
AUDIENCE = "jwtauth"
# Members that would reveal a private or symmetric key (RFC 7518 section 6).
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

ASYMMETRIC = [
    pytest.param("ES256", "EC", "P-256", id="ES256"),
    pytest.param("RS256", "RSA", None, id="RS256"),
    pytest.param("EdDSA", "OKP", "Ed25519", id="EdDSA"),
]


async def jwks(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    keys = response.json()["keys"]
    assert isinstance(keys, list)
    return keys


def verify_with_pyjwt(token: str, keys: list[dict[str, Any]], algorithm: str) -> dict[str, Any]:
    """Verify like an outside service: pick the JWKS key by kid, pin the algorithm."""
    kid = jwt.get_unverified_header(token)["kid"]
    matching = [key for key in keys if key["kid"] == kid]
    assert len(matching) == 1, f"kid {kid} is not published once in {keys}"
    return jwt.decode(
        token, jwt.PyJWK(matching[0]), algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER
    )


# -- GET /.well-known/jwks.json ---------------------------------------------------------


async def test_jwks_publishes_an_es256_public_key_by_default(api: Api) -> None:
    keys = await jwks(api)
    assert len(keys) >= 1
    for key in keys:
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert isinstance(key["kid"], str) and key["kid"]
        assert {"x", "y"} <= set(key)
        assert not PRIVATE_MEMBERS & set(key)


async def test_jwks_is_cacheable_with_max_age_and_etag(api: Api) -> None:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    match = re.search(r"max-age=(\d+)", response.headers["Cache-Control"])
    assert match is not None and int(match.group(1)) > 0
    assert "no-store" not in response.headers["Cache-Control"]
    assert response.headers["ETag"]


async def test_jwks_if_none_match_with_its_etag_is_304(api: Api) -> None:
    first = await api.client.get("/.well-known/jwks.json")
    etag = first.headers["ETag"]
    again = await api.client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag


async def test_jwks_if_none_match_with_another_etag_is_200(api: Api) -> None:
    response = await api.client.get(
        "/.well-known/jwks.json", headers={"If-None-Match": '"something-else"'}
    )
    assert response.status_code == 200
    assert response.json()["keys"]


async def test_access_token_kid_is_published_and_pyjwt_verifies_it(api: Api) -> None:
    alice = await api.signup("alice")
    me = (await api.client.get("/users/me", headers=alice.headers)).json()
    header = jwt.get_unverified_header(alice.access_token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] in {key["kid"] for key in await jwks(api)}
    claims = verify_with_pyjwt(alice.access_token, await jwks(api), "ES256")
    assert claims["sub"] == me["id"]
    assert claims["roles"] == ["user"]
    assert {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "roles"} <= set(claims)
    assert not any("password" in name or name == "email" for name in claims)


async def test_pyjwt_rejects_the_token_under_another_key_with_its_kid(api: Api) -> None:
    # The check above is only meaningful if a wrong key fails it.
    alice = await api.signup("alice")
    published = await jwks(api)
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    forged = [
        {**ECAlgorithm.to_jwk(stranger, as_dict=True), "kid": key["kid"], "alg": "ES256"}
        for key in published
    ]
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(alice.access_token, forged, "ES256")


@pytest.mark.parametrize(("algorithm", "kty", "crv"), ASYMMETRIC)
async def test_each_asymmetric_algorithm_publishes_its_key_and_tokens_verify(
    make_api: AppFactory, algorithm: str, kty: str, crv: str | None
) -> None:
    api = await make_api(algorithm=algorithm)
    keys = await jwks(api)
    current = [key for key in keys if key["alg"] == algorithm]
    assert len(current) == 1
    key = current[0]
    assert key["kty"] == kty
    assert key["use"] == "sig"
    assert key.get("crv") == crv
    assert not PRIVATE_MEMBERS & set(key)
    alice = await api.signup("alice")
    header = jwt.get_unverified_header(alice.access_token)
    assert (header["alg"], header["kid"]) == (algorithm, key["kid"])
    claims = verify_with_pyjwt(alice.access_token, keys, algorithm)
    assert claims["roles"] == ["user"]


async def test_hs256_tokens_verify_with_the_secret_and_jwks_is_empty(
    make_api: AppFactory,
) -> None:
    secret = secrets.token_urlsafe(36)
    assert len(secret) == 48
    api = await make_api(algorithm="HS256", secret=secret)
    alice = await api.signup("alice")
    assert jwt.get_unverified_header(alice.access_token)["alg"] == "HS256"
    claims = jwt.decode(
        alice.access_token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
    )
    assert claims["roles"] == ["user"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            alice.access_token, secrets.token_urlsafe(36), algorithms=["HS256"],
            audience=AUDIENCE, issuer=ISSUER,
        )
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert secret not in response.text


# -- GET /.well-known/openid-configuration ----------------------------------------------


async def test_openid_configuration_names_issuer_jwks_and_algorithm(api: Api) -> None:
    response = await api.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"] == ISSUER
    assert config["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert config["token_endpoint"].startswith(f"{ISSUER}/")
    assert config["id_token_signing_alg_values_supported"] == ["ES256"]
    # The advertised JWKS is the one this server serves.
    served = await api.client.get(urlsplit(config["jwks_uri"]).path)
    assert served.status_code == 200
    assert served.json() == {"keys": await jwks(api)}


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_openid_configuration_follows_the_configured_algorithm(
    make_api: AppFactory, algorithm: str
) -> None:
    api = await make_api(algorithm=algorithm)
    config = (await api.client.get("/.well-known/openid-configuration")).json()
    assert config["id_token_signing_alg_values_supported"] == [algorithm]


# -- GET /healthz -----------------------------------------------------------------------


async def test_healthz_is_ok_when_the_store_answers(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# -- keys persist in the store ----------------------------------------------------------


async def test_two_apps_on_one_database_publish_the_same_key(make_api: AppFactory) -> None:
    first = await make_api()
    second = await make_api()
    assert {k["kid"] for k in await jwks(first)} == {k["kid"] for k in await jwks(second)}


async def test_two_apps_on_one_database_accept_each_others_tokens(
    make_api: AppFactory,
) -> None:
    first = await make_api()
    second = await make_api()
    from_first = await first.signup("alice")
    from_second = await second.login("alice")
    assert (
        jwt.get_unverified_header(from_first.access_token)["kid"]
        == jwt.get_unverified_header(from_second.access_token)["kid"]
    )
    for api in (first, second):
        for tokens in (from_first, from_second):
            response = await api.client.get("/users/me", headers=tokens.headers)
            assert response.status_code == 200, response.text
            assert response.json()["username"] == "alice"


# -- nothing request-dependent in what caches keep (issue 13, point 4) ------------------

FORGED = [
    {"Host": "evil.example"},
    {"Host": "evil.example:8443", "X-Forwarded-Host": "evil.example",
     "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example;proto=http"},
]


@pytest.mark.parametrize("issuer", [ISSUER, None], ids=["configured", "recorded"])
@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
async def test_a_forged_host_changes_nothing_in_the_well_known_documents(
    make_api: AppFactory, issuer: str | None, path: str
) -> None:
    # Without JWTAUTH_PUBLIC_URL (make_api leaves it unset); "recorded": no issuer set
    # either, so the first server on the database records its own address.
    api = await make_api(issuer=issuer)
    plain = await api.client.get(path)
    assert plain.status_code == 200
    assert plain.headers["cache-control"].startswith("public")
    assert "vary" not in plain.headers
    for headers in FORGED:
        forged = await api.client.get(path, headers=headers)
        assert forged.content == plain.content, headers
        assert dict(forged.headers) == dict(plain.headers)
        assert b"evil" not in forged.content
    if path.endswith("openid-configuration"):
        config = plain.json()
        expected = issuer or "http://127.0.0.1:8000"
        assert config["issuer"] == expected
        for name in ("jwks_uri", "token_endpoint", "revocation_endpoint"):
            assert config[name].startswith(expected + "/"), (name, config[name])
