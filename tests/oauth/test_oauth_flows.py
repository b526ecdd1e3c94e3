"""The core's flows end to end over a real database (SQLite and PostgreSQL): code + PKCE,
consent, refresh over the existing families, client_credentials, introspection,
revocation, userinfo, ID tokens, RP-initiated logout decisions, client deletion."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth_world import (
    ISSUER,
    World,
    authorize,
    basic,
    exchange,
    introspect,
    refresh,
    register_native,
    register_web,
    signin_for,
    world,
)

from jwtauth import InvalidToken
from jwtauth.server.oauth import authorize as az
from jwtauth.server.oauth.end_session import EndSession
from jwtauth.server.oauth.errors import (
    InsufficientScopeError,
    InvalidGrantError,
    InvalidTargetError,
)

__all__ = ["world"]


def id_token_claims(world: World, token: str, alg: str = "RS256") -> dict[str, Any]:
    decoded = jwt.decode(token, KeySet.import_key_set(world.keys.jwks), algorithms=[alg])
    assert decoded.header["alg"] == alg
    return dict(decoded.claims)


async def test_code_flow_with_consent_refresh_and_id_token(world: World) -> None:
    client_id, secret = await register_web(world)
    user_id = await world.user()
    signin = signin_for(world, user_id)
    auth = await authorize(world, client_id, signin, scope="openid profile email")
    assert auth.params["state"] == "st-42" and auth.params["iss"] == ISSUER
    tokens = await exchange(world, client_id, secret, auth)
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "openid profile email"
    assert "refresh_token" in tokens  # a confidential client, refresh_token registered
    claims = id_token_claims(world, tokens["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == client_id and claims["sub"] == user_id
    assert claims["nonce"] == "n-42" and claims["amr"] == ["pwd"] and claims["acr"] == "aal1"
    assert claims["preferred_username"] == "alice" and claims["email"] == "alice@example.test"
    assert claims["email_verified"] is False
    access = world.verifier.verify_sync(tokens["access_token"])
    assert access.raw["client_id"] == client_id and access.sid == claims["sid"]
    assert access.raw["aud"] == "jwtauth" and access.roles == ("user",)

    renewed = await refresh(world, client_id, secret, tokens["refresh_token"])
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert id_token_claims(world, renewed["id_token"])["nonce"] == "n-42"
    # The consent is remembered: the next request goes straight back with a code.
    again = await authorize(world, client_id, signin, consent=False)
    assert again.code


async def test_user_access_tokens_verify_with_the_library_verifier(world: World) -> None:
    from jwtauth import Verifier

    client_id, secret = await register_web(world)
    auth = await authorize(world, client_id, signin_for(world, await world.user()))
    tokens = await exchange(world, client_id, secret, auth)
    library = Verifier(world.keys.keyring, issuer=ISSUER, audience="jwtauth")
    claims = library.verify_sync(tokens["access_token"])
    assert claims.raw["scope"] == "openid profile email"


async def test_public_client_gets_a_refresh_token_only_with_offline_access(world: World) -> None:
    client_id = await register_native(world)
    signin = signin_for(world, await world.user())
    plain = await exchange(world, client_id, None, await authorize(
        world, client_id, signin, redirect_uri="http://127.0.0.1:51234/callback"))
    assert "refresh_token" not in plain
    offline = await exchange(world, client_id, None, await authorize(
        world, client_id, signin, scope="openid offline_access",
        redirect_uri="http://127.0.0.1:40000/callback"))
    assert "refresh_token" in offline


async def test_consent_deny_redirects_access_denied(world: World) -> None:
    client_id, _ = await register_web(world)
    signin = signin_for(world, await world.user())
    from jwtauth.server.oauth.pkce import s256

    request = await world.provider.authorization.parse([
        ("client_id", client_id), ("response_type", "code"), ("scope", "openid"),
        ("redirect_uri", "https://rp.example.test/callback"), ("state", "s"),
        ("code_challenge", s256("v" * 43)), ("code_challenge_method", "S256"),
    ])
    assert isinstance(request, az.AuthorizationRequest)
    shown = await world.provider.authorization.decide(request, signin)
    assert isinstance(shown, az.ShowConsent) and shown.scopes == ("openid",)
    denied = await world.provider.authorization.consent(
        request, signin, decision="deny", token=shown.consent_token)
    assert isinstance(denied, az.Redirect) and "error=access_denied" in denied.url
    assert "state=s" in denied.url and "iss=" in denied.url


async def test_skip_consent_client_never_shows_the_page(world: World) -> None:
    client_id, _ = await register_web(world, skip_consent=True)
    auth = await authorize(world, client_id, signin_for(world, await world.user()),
                           consent=False)
    assert auth.code


async def test_prompts_and_hints(world: World) -> None:
    client_id, secret = await register_web(world)
    user_id = await world.user()
    signin = signin_for(world, user_id)
    tokens = await exchange(world, client_id, secret, await authorize(world, client_id, signin))
    endpoint = world.provider.authorization

    async def decision(signin_: Any, **params: str) -> Any:
        from jwtauth.server.oauth.pkce import s256

        pairs = [("client_id", client_id), ("response_type", "code"),
                 ("scope", "openid profile email"), ("redirect_uri",
                 "https://rp.example.test/callback"), ("code_challenge", s256("v" * 43)),
                 ("code_challenge_method", "S256"), *params.items()]
        request = await endpoint.parse(pairs)
        assert isinstance(request, az.AuthorizationRequest), request
        return request, await endpoint.decide(request, signin_)

    _, none_anonymous = await decision(None, prompt="none")
    assert isinstance(none_anonymous, az.Redirect) and "error=login_required" in none_anonymous.url
    _, login = await decision(signin, prompt="login", login_hint="alice")
    assert isinstance(login, az.ShowSignIn) and login.login_hint == "alice"
    request, _ = await decision(signin, prompt="login")
    fresh = await endpoint.decide(request, signin, fresh_signin=True)
    assert isinstance(fresh, az.Redirect) and "code=" in fresh.url
    world.clock.advance(120)
    _, aged = await decision(signin, max_age="60")
    assert isinstance(aged, az.ShowSignIn)
    _, young = await decision(signin, max_age="600")
    assert isinstance(young, az.Redirect) and "code=" in young.url
    _, hinted = await decision(signin, prompt="none", id_token_hint=tokens["id_token"])
    assert isinstance(hinted, az.Redirect) and "code=" in hinted.url
    other = signin_for(world, await world.user("bob"), "signin-bob")
    _, mismatch = await decision(other, prompt="none", id_token_hint=tokens["id_token"])
    assert isinstance(mismatch, az.Redirect) and "error=login_required" in mismatch.url
    _, needs_consent = await decision(other, prompt="none")
    assert isinstance(needs_consent, az.Redirect)
    assert "error=consent_required" in needs_consent.url
    from jwtauth.server.oauth.pkce import s256

    for hint in (tokens["id_token"] + "x", tokens["access_token"]):  # forged; not an ID token
        bad = await endpoint.parse([
            ("client_id", client_id), ("response_type", "code"), ("scope", "openid"),
            ("redirect_uri", "https://rp.example.test/callback"), ("id_token_hint", hint),
            ("code_challenge", s256("v" * 43)), ("code_challenge_method", "S256")])
        assert isinstance(bad, az.Redirect) and "error=invalid_request" in bad.url


async def test_resource_indicator_sets_the_audience(world: World) -> None:
    client_id, secret = await register_web(world, resources=["https://api.example.test"])
    signin = signin_for(world, await world.user())
    auth = await authorize(world, client_id, signin, resource="https://api.example.test")
    tokens = await exchange(world, client_id, secret, auth)
    assert world.verifier.verify_sync(tokens["access_token"]).raw["aud"] == (
        "https://api.example.test")
    refused = await world.provider.authorization.parse([
        ("client_id", client_id), ("response_type", "code"), ("scope", "openid"),
        ("redirect_uri", "https://rp.example.test/callback"), ("state", "s"),
        ("code_challenge", "A" * 43), ("code_challenge_method", "S256"),
        ("resource", "https://other.example.test"),
    ])
    assert isinstance(refused, az.Redirect) and "error=invalid_target" in refused.url
    with pytest.raises(InvalidTargetError):
        await world.provider.token.handle(
            [("grant_type", "client_credentials"), ("resource", "https://other.example.test")],
            authorization=basic(client_id, secret))


async def test_client_credentials_tokens(world: World) -> None:
    client_id, secret = await register_web(world, resources=["https://api.example.test"])
    body = await world.provider.token.handle(
        [("grant_type", "client_credentials"), ("scope", "api:read"),
         ("resource", "https://api.example.test")], authorization=basic(client_id, secret))
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    claims = world.verifier.verify_sync(body["access_token"]).raw
    assert claims["sub"] == claims["client_id"] == client_id
    assert "sid" not in claims and "roles" not in claims
    assert claims["aud"] == "https://api.example.test" and claims["scope"] == "api:read"
    info = await introspect(world, client_id, secret, body["access_token"])
    assert info["active"] is True and info["client_id"] == client_id
    from jwtauth.server.oauth.errors import InvalidScopeError

    for scope in ("openid", "api:write"):
        with pytest.raises(InvalidScopeError):
            await world.provider.token.handle(
                [("grant_type", "client_credentials"), ("scope", scope)],
                authorization=basic(client_id, secret))


async def test_introspection_and_revocation(world: World) -> None:
    client_id, secret = await register_web(world)
    signin = signin_for(world, await world.user())
    tokens = await exchange(world, client_id, secret, await authorize(world, client_id, signin))
    info = await introspect(world, client_id, secret, tokens["access_token"])
    assert info["active"] is True and info["scope"] == "openid profile email"
    assert info["token_type"] == "Bearer" and info["username"] == "alice"
    refresh_info = await introspect(world, client_id, secret, tokens["refresh_token"])
    assert refresh_info["active"] is True and refresh_info["client_id"] == client_id
    assert await introspect(world, client_id, secret, "not-a-token") == {"active": False}

    # An access token dies alone (RFC 7009); its refresh family lives on.
    revoke = world.provider.inspection.revoke
    await revoke([("token", tokens["access_token"])], authorization=basic(client_id, secret))
    assert await introspect(world, client_id, secret, tokens["access_token"]) == {"active": False}
    renewed = await refresh(world, client_id, secret, tokens["refresh_token"])
    # A refresh token's family dies with its access tokens.
    await revoke([("token", renewed["refresh_token"])], authorization=basic(client_id, secret))
    assert await introspect(world, client_id, secret, renewed["access_token"]) == {
        "active": False}
    with pytest.raises(InvalidGrantError):
        await refresh(world, client_id, secret, renewed["refresh_token"])
    # Unknown tokens, and tokens of other clients, are 200 and change nothing.
    other_id, other_secret = await register_web(world, client_name="Other")
    fresh = await exchange(world, client_id, secret, await authorize(world, client_id, signin))
    await revoke([("token", fresh["refresh_token"])], authorization=basic(other_id, other_secret))
    await revoke([("token", fresh["access_token"])], authorization=basic(other_id, other_secret))
    await revoke([("token", "nope")], authorization=basic(other_id, other_secret))
    assert (await introspect(world, client_id, secret, fresh["access_token"]))["active"]
    assert await refresh(world, client_id, secret, fresh["refresh_token"])


async def test_introspection_of_a_live_access_token_reads_nothing_from_the_store(
    world: World
) -> None:
    from sqlalchemy import event

    client_id, secret = await register_web(world)
    tokens = await exchange(world, client_id, secret, await authorize(
        world, client_id, signin_for(world, await world.user())))
    world.provider.clients._ttl = 60.0  # as wired: a client stays in memory a while
    await world.provider.clients.get(client_id)
    statements: list[str] = []
    event.listen(world.db.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    assert (await introspect(world, client_id, secret, tokens["access_token"]))["active"]
    assert statements == []
    # Userinfo reads the user through Users.profile alone (the wiring answers it from
    # memory; this test's adapter queries, once per call).
    calls = world.users.calls
    assert (await world.provider.userinfo.claims(tokens["access_token"]))["sub"]
    assert len(statements) == world.users.calls - calls == 1


async def test_userinfo(world: World) -> None:
    client_id, secret = await register_web(world, resources=["https://api.example.test"])
    user_id = await world.user()
    signin = signin_for(world, user_id)
    tokens = await exchange(world, client_id, secret, await authorize(
        world, client_id, signin, scope="openid email"))
    claims = await world.provider.userinfo.claims(tokens["access_token"])
    assert claims == {"sub": user_id, "email": "alice@example.test", "email_verified": False}
    no_openid = await exchange(world, client_id, secret, await authorize(
        world, client_id, signin, scope="profile"))
    with pytest.raises(InsufficientScopeError):
        await world.provider.userinfo.claims(no_openid["access_token"])
    targeted = await exchange(world, client_id, secret, await authorize(
        world, client_id, signin, resource="https://api.example.test"))
    with pytest.raises(InvalidToken):
        await world.provider.userinfo.claims(targeted["access_token"])
    cc = await world.provider.token.handle([("grant_type", "client_credentials")],
                                           authorization=basic(client_id, secret))
    with pytest.raises(InsufficientScopeError):
        await world.provider.userinfo.claims(cc["access_token"])


async def test_id_token_algorithm_follows_the_client_registration(world: World) -> None:
    client_id, secret = await register_web(world, id_token_signed_response_alg="ES256")
    tokens = await exchange(world, client_id, secret, await authorize(
        world, client_id, signin_for(world, await world.user())))
    assert id_token_claims(world, tokens["id_token"], alg="ES256")["aud"] == client_id


async def test_rp_initiated_logout(world: World) -> None:
    client_id, secret = await register_web(world)
    signin = signin_for(world, await world.user())
    tokens = await exchange(world, client_id, secret, await authorize(world, client_id, signin))
    decide = world.provider.end_session.decide
    done = await decide([("id_token_hint", tokens["id_token"]),
                         ("post_logout_redirect_uri", "https://rp.example.test/bye"),
                         ("state", "xyz")], signin)
    assert done == EndSession((signin.session_id,), "https://rp.example.test/bye?state=xyz")
    unconfirmed = await decide([("client_id", client_id)], signin)
    assert isinstance(unconfirmed, EndSession) and unconfirmed.confirm
    stranger = await decide([("id_token_hint", tokens["id_token"]),
                             ("post_logout_redirect_uri", "https://evil.example.test/")], signin)
    assert isinstance(stranger, az.ErrorPage)


async def test_deleting_a_client_kills_its_tokens(world: World) -> None:
    client_id, secret = await register_web(world)
    signin = signin_for(world, await world.user())
    tokens = await exchange(world, client_id, secret, await authorize(world, client_id, signin))
    cc = await world.provider.token.handle([("grant_type", "client_credentials")],
                                           authorization=basic(client_id, secret))
    await world.provider.registry.delete(client_id)
    for token in (tokens["access_token"], cc["access_token"]):
        with pytest.raises(InvalidToken):
            world.verifier.verify_sync(token)
    from jwtauth.server.oauth.errors import InvalidClientError

    with pytest.raises(InvalidClientError):
        await refresh(world, client_id, secret, tokens["refresh_token"])
    assert await world.families.family_of(tokens["refresh_token"]) is not None
    assert not await world.families.is_current(tokens["refresh_token"], now=world.provider.now())
